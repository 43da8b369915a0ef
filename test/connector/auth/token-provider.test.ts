import { afterAll, describe, expect, it } from 'vitest';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHttpAgent } from '../../../connector/http/http-agent.ts';
import { IdentityError } from '../../../connector/auth/aadsts-errors.ts';
import { MsalTokenProvider } from '../../../connector/auth/token-provider.ts';
import { type ClientCredential } from '../../../connector/config/credential.ts';
import { TransportError } from '../../../connector/http/transport-errors.ts';
import { startEmulator, type Emulator } from '../../emulator/index.ts';
import { createTestPki } from '../../emulator/tls.ts';
import { createTestIssuer } from '../../emulator/federated-issuer.ts';

const pki = await createTestPki();
const dir = await mkdtemp(join(tmpdir(), 'o365-auth-'));
const emulators: Emulator[] = [];
const agent = createHttpAgent({ caFile: pki.caFile });
afterAll(async () => { await Promise.all(emulators.map((e) => e.stop())); await agent.close(); });

async function emulator(options: Parameters<typeof startEmulator>[0] = {}): Promise<Emulator> {
  const started = await startEmulator({ pki, seed: 40 + emulators.length, ...options });
  emulators.push(started);
  return started;
}

function provider(e: Emulator, overrides: Partial<ConstructorParameters<typeof MsalTokenProvider>[0]> = {}) {
  return new MsalTokenProvider({
    tenantId: e.tenantId, clientId: e.clientId, credential: { kind: 'secret', secret: e.clientSecret },
    authorityHost: e.authorityHost, apiRoot: e.apiRoot, dispatcher: agent, ...overrides,
  });
}

async function failure(promise: Promise<unknown>): Promise<Error> {
  try { await promise; } catch (error) { return error as Error; }
  throw new Error('expected a failure');
}

describe('MsalTokenProvider', () => {
  it('reuses the cached token until shortly before expiry', async () => {
    const e = await emulator();
    const tokens = provider(e);
    const first = await tokens.getToken();
    expect(await tokens.getToken()).toBe(first);
    expect(await tokens.getToken()).toBe(first);
    expect(e.counters().tokensIssued).toBe(1);
  });

  it('fetches a new token when the cached one is inside the renewal margin (msal refreshes 5 minutes early)', async () => {
    const e = await emulator({ tokenLifetimeSeconds: 240 });
    const tokens = provider(e);
    const first = await tokens.getToken();
    const second = await tokens.getToken();
    expect(second).not.toBe(first);
    expect(e.counters().tokensIssued).toBe(2);
  });

  it('asks the identity platform once for a burst of concurrent callers', async () => {
    const e = await emulator();
    const tokens = provider(e);
    const all = await Promise.all(Array.from({ length: 25 }, () => tokens.getToken()));
    expect(new Set(all).size).toBe(1);
    expect(e.counters().tokensIssued).toBe(1);
  });

  it('drops only the token the API refused, then fetches a fresh one past msal\'s cache', async () => {
    const e = await emulator();
    const tokens = provider(e);
    const first = await tokens.getToken();
    tokens.invalidate('some-older-token');
    expect(await tokens.getToken()).toBe(first);
    tokens.invalidate(first);
    const second = await tokens.getToken();
    expect(second).not.toBe(first);
    expect(e.counters().tokensIssued).toBe(2);
  });

  it('signs in with a certificate (SHA-256 thumbprint) from one PEM holding key and certificate', async () => {
    const e = await emulator();
    const certificate = await pki.issue({ commonName: 'o365-connector', usage: 'client' });
    e.registerCertificate(certificate.certPem);
    const tokens = provider(e, { credential: { kind: 'certificate', path: certificate.combinedFile } });
    await expect(tokens.getToken()).resolves.toMatch(/\./);
    const stranger = await pki.issue({ commonName: 'not-registered', usage: 'client' });
    const error = await failure(provider(e, { credential: { kind: 'certificate', path: stranger.combinedFile } }).getToken());
    expect(error).toMatchObject({ code: 'AADSTS700027' });
  });

  it('explains a certificate file without a key', async () => {
    const e = await emulator();
    const file = join(dir, 'cert-only.pem');
    await writeFile(file, pki.server.certPem);
    const error = await failure(provider(e, { credential: { kind: 'certificate', path: file } }).getToken());
    expect(error.message).toMatch(/^clientCertificatePath: .*cert-only\.pem must hold both a PRIVATE KEY and a CERTIFICATE in PEM$/);
  });

  it('maps identity errors to AADSTS codes with meaning and fix', async () => {
    const e = await emulator();
    const wrong = await failure(provider(e, { credential: { kind: 'secret', secret: 'b7c1d2e3-f4a5-4b6c-8d7e-9f0a1b2c3d4e' } }).getToken());
    expect(wrong).toBeInstanceOf(IdentityError);
    expect(wrong).toMatchObject({ code: 'AADSTS7000215' });
    e.expireSecrets();
    expect(await failure(provider(e).getToken())).toMatchObject({ code: 'AADSTS7000222' });
  });

  it('re-reads the configuration once after AADSTS7000222 and continues with the rotated secret', async () => {
    const e = await emulator();
    let current: ClientCredential = { kind: 'secret', secret: e.clientSecret };
    let reloads = 0;
    const tokens = provider(e, { reloadCredential: async () => { reloads += 1; return current; } });
    const before = await tokens.getToken();
    const rotated = e.rotateSecret({ expireOld: true });
    current = { kind: 'secret', secret: rotated };
    tokens.invalidate(before);
    await expect(tokens.getToken()).resolves.not.toBe(before);
    expect(reloads).toBe(1);
    expect(e.counters().tokenFailures).toBe(1);
  });

  it('gives up after one reload when the configuration still holds the rejected secret', async () => {
    const e = await emulator();
    let reloads = 0;
    const tokens = provider(e, { reloadCredential: async () => { reloads += 1; return { kind: 'secret', secret: e.clientSecret }; } });
    e.expireSecrets();
    expect(await failure(tokens.getToken())).toMatchObject({ code: 'AADSTS7000222' });
    expect(reloads).toBe(1);
    expect(e.counters().tokenFailures).toBe(1);
  });

  it('reports the real transport failure that msal hides behind its own error', async () => {
    const e = await emulator();
    const untrusting = createHttpAgent();
    const error = await failure(provider(e, { dispatcher: untrusting }).getToken());
    expect(error).toBeInstanceOf(TransportError);
    expect((error as TransportError).toLine()).toMatch(/not trusted.*NODE_EXTRA_CA_CERTS/);
    await untrusting.close();
    const closed = await failure(provider(e, { authorityHost: 'https://127.0.0.1:9' }).getToken());
    expect(closed).toMatchObject({ code: 'ECONNREFUSED' });
  });
});

describe('MsalTokenProvider without a secret', () => {
  it('reads the federated token file again for every token request: a rewritten file is what the next request sends', async () => {
    const e = await emulator();
    const issuer = createTestIssuer('https://oidc.cluster.example/a');
    e.trustIssuer(issuer.issuer, issuer.publicKey);
    e.addFederatedCredential({ issuer: issuer.issuer, subject: 'system:serviceaccount:soc:o365' });
    const file = join(dir, 'federated-token');
    const write = (subject: string) => writeFile(file, issuer.token({ subject, notBefore: e.now(), expires: new Date(e.now().getTime() + 3_600_000) }));
    await write('system:serviceaccount:soc:o365');
    const tokens = provider(e, { credential: { kind: 'federated', tokenFile: file } });
    const first = await tokens.getToken();
    // A token for a subject the app does not trust: refused, which it can only be when the file is read again.
    await write('system:serviceaccount:default:default');
    tokens.invalidate(first);
    expect(await failure(tokens.getToken())).toMatchObject({ code: 'AADSTS70021' });
    await write('system:serviceaccount:soc:o365');
    expect(await tokens.getToken()).not.toBe(first);
    expect(e.counters().tokensIssued).toBe(2);
  });

  it('asks the host\'s managed identity endpoint, by client id for a user-assigned identity, and never the token endpoint', async () => {
    const e = await emulator();
    const identity = await e.serveManagedIdentity({ clientId: '2e3f4a5b-6c7d-4e8f-9a0b-1c2d3e4f5a6b' });
    const saved = { endpoint: process.env['IDENTITY_ENDPOINT'], header: process.env['IDENTITY_HEADER'] };
    process.env['IDENTITY_ENDPOINT'] = identity.identityEndpoint;
    process.env['IDENTITY_HEADER'] = identity.identityHeader;
    try {
      const token = await provider(e, { credential: { kind: 'managedIdentity' }, clientId: identity.clientId }).getToken();
      const claims = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8'));
      expect(claims).toMatchObject({ tid: e.tenantId, appid: identity.clientId, aud: e.apiRoot });
      expect(identity.tokensIssued()).toBe(1);
      expect(e.counters().byRoute['token'] ?? 0).toBe(0);
    } finally {
      for (const [name, value] of [['IDENTITY_ENDPOINT', saved.endpoint], ['IDENTITY_HEADER', saved.header]] as const) {
        if (value === undefined) delete process.env[name]; else process.env[name] = value;
      }
    }
  });
});
