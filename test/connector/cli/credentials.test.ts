/**
 * Credentials without a secret through the real CLI: each refusal of a federated token or a managed identity is one
 * line with its code and its fix and the exit code of its kind, in `test` and in `run` (which then writes nothing).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { startEmulator } from '../../emulator/index.ts';
import { createTestIssuer } from '../../emulator/federated-issuer.ts';
import { connectorOutputs } from '../../emulator/connector-config.ts';
import type { ManagedIdentityEndpoint } from '../../emulator/managed-identity.ts';
import { workDir } from '../../e2e/support.ts';

const root = resolve(import.meta.dirname, '../../..');
const emulator = await startEmulator({ seed: 127, days: 1, blobIntervalMinutes: 240 });
const dir = await workDir();
const issuer = createTestIssuer('https://oidc.prod-aks.example/3a9e');
const stranger = createTestIssuer('https://token.actions.githubusercontent.com');
const subject = 'system:serviceaccount:soc:o365-connector';
const hour = 3_600_000;
let identity: ManagedIdentityEndpoint;
let roleless: ManagedIdentityEndpoint;
beforeAll(async () => {
  emulator.trustIssuer(issuer.issuer, issuer.publicKey);
  emulator.trustIssuer(stranger.issuer, stranger.publicKey);
  emulator.addFederatedCredential({ issuer: issuer.issuer, subject });
  identity = await emulator.serveManagedIdentity({ clientId: '0c5e8a4b-3f2d-4a1c-9b8e-7d6f5a4b3c2d' });
  roleless = await emulator.serveManagedIdentity({ clientId: '1d6f9b5c-4a3e-4b2d-8c9f-8e7a6b5c4d3e', roles: [] });
});
afterAll(() => emulator.stop());

interface Result { code: number; stdout: string; stderr: string; sink: string }

let runs = 0;
async function cli(command: 'test' | 'run', outputs: Record<string, unknown>, env: Record<string, string | undefined> = {}, args: string[] = []): Promise<Result> {
  runs += 1;
  const file = join(dir, `outputs-${runs}.json`);
  await writeFile(file, JSON.stringify({ ...connectorOutputs(emulator), caFile: undefined, clientSecret: undefined, clientSecretExpiry: undefined, ...outputs }), { mode: 0o600 });
  const sink = join(dir, `audit-${runs}.ndjson`);
  const commandArgs = command === 'run' ? ['run', '--once', '--state', join(dir, `state-${runs}`), '--sink', `file:${sink}`] : ['test'];
  const merged: Record<string, string | undefined> = { ...process.env, NODE_EXTRA_CA_CERTS: emulator.caFile, O365_OUTPUTS_FILE: file, O365_LOG_LEVEL: 'fatal', ...env };
  for (const key of Object.keys(merged)) if (merged[key] === undefined) delete merged[key];
  const { code, stdout, stderr } = await new Promise<Omit<Result, 'sink'>>((resolvePromise) => {
    execFile(process.execPath, [join(root, 'connector/bin.mjs'), ...commandArgs, ...args], { cwd: dir, env: merged as NodeJS.ProcessEnv, timeout: 60_000 }, (error, out, err) => {
      resolvePromise({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout: out, stderr: err });
    });
  });
  return { code, stdout, stderr, sink: await readFile(sink, 'utf8').catch(() => '') };
}

/** A token file holding `token`; its path. */
async function tokenFile(token: string): Promise<string> {
  runs += 1;
  const file = join(dir, `token-${runs}`);
  await writeFile(file, token);
  return file;
}

const valid = () => issuer.token({ subject, notBefore: emulator.now(), expires: new Date(emulator.now().getTime() + hour) });
const federated = (file: string) => [{ credential: 'federated' }, { AZURE_FEDERATED_TOKEN_FILE: file }] as const;

function expectOneLine(result: Result, line: RegExp): void {
  const lines = result.stderr.split('\n').filter((each) => each.startsWith('error:') || each.startsWith('internal error:'));
  expect(lines, result.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(line);
  expect(result.stderr).not.toMatch(/\n\s+at /);
}

describe('credentials without a secret, through the CLI', () => {
  it('signs in with a federated token from AZURE_FEDERATED_TOKEN_FILE alone (no credential key, no secret), and with a managed identity', async () => {
    const file = await tokenFile(valid());
    const inferred = await cli('test', {}, { AZURE_FEDERATED_TOKEN_FILE: file });
    expect(inferred.code, inferred.stderr).toBe(0);
    expect(inferred.stdout).toMatch(/^Connection successful /);
    const managed = await cli('test', { credential: 'managedIdentity', clientId: identity.clientId }, { IDENTITY_ENDPOINT: identity.identityEndpoint, IDENTITY_HEADER: identity.identityHeader });
    expect(managed.code, managed.stderr).toBe(0);
    expect(managed.stdout).toMatch(/^Connection successful /);
  });

  const refusals: Array<[string, () => Promise<readonly [Record<string, unknown>, Record<string, string | undefined>]>, number, RegExp]> = [
    ['a token whose subject no federated credential names (AADSTS70021)', async () => federated(await tokenFile(issuer.token({ subject: 'system:serviceaccount:default:default', notBefore: emulator.now(), expires: new Date(emulator.now().getTime() + hour) }))), 3,
      /^error: AADSTS70021: no federated identity credential of the app matches the token's issuer, subject and audience\. Fix: add one for this workload: `pulumi config set o365-connector:federatedIdentities/],
    ['a token of an issuer the app does not trust (AADSTS700211)', async () => federated(await tokenFile(stranger.token({ subject, notBefore: emulator.now(), expires: new Date(emulator.now().getTime() + hour) }))), 3,
      /^error: AADSTS700211: the app has no federated identity credential for the token's issuer\. Fix: add the issuer .* to o365-connector:federatedIdentities/],
    ['an expired token (AADSTS700024)', async () => federated(await tokenFile(issuer.token({ subject, notBefore: new Date(emulator.now().getTime() - 2 * hour), expires: new Date(emulator.now().getTime() - hour) }))), 3,
      /^error: AADSTS700024: the federated token is expired or not yet valid\. Fix: the token file must be rewritten before its token expires/],
    ['a token file that does not exist', async () => federated(join(dir, 'no-such-token')), 2,
      /^error: CONFIG_INVALID: federatedTokenFile: the federated token file \S+no-such-token does not exist\. Fix: on AKS, give the pod the label azure\.workload\.identity\/use/],
    ['a token file that cannot be read (a directory)', async () => { const path = join(dir, 'token-dir'); await mkdir(path, { recursive: true }); return federated(path); }, 2,
      /^error: CONFIG_INVALID: federatedTokenFile: the federated token file \S+token-dir is a directory, not a token file\. Fix: /],
    ['an empty token file', async () => federated(await tokenFile('')), 2,
      /^error: CONFIG_INVALID: federatedTokenFile: the federated token file \S+ is empty\. Fix: /],
    ['credential federated without a token file', async () => [{ credential: 'federated' }, { AZURE_FEDERATED_TOKEN_FILE: undefined }] as const, 2,
      /^error: CONFIG_INVALID: federatedTokenFile: missing: the credential is federated, but no token file is named\. Fix: set AZURE_FEDERATED_TOKEN_FILE/],
    ['no managed identity endpoint', async () => [{ credential: 'managedIdentity', clientId: identity.clientId }, { IDENTITY_ENDPOINT: 'http://127.0.0.1:9/msi/token', IDENTITY_HEADER: 'x' }] as const, 3,
      /^error: MANAGED_IDENTITY_UNAVAILABLE: no managed identity endpoint answered: .*127\.0\.0\.1:9.* Fix: run the connector on an Azure host with a managed identity assigned/],
    ['a managed identity endpoint asked without its header', async () => [{ credential: 'managedIdentity', clientId: identity.clientId }, { IDENTITY_ENDPOINT: identity.identityEndpoint, IDENTITY_HEADER: 'copied-from-elsewhere' }] as const, 3,
      /^error: MANAGED_IDENTITY_REFUSED: the managed identity endpoint refused the token request \(HTTP 401.*\) Fix: use the IDENTITY_ENDPOINT and IDENTITY_HEADER the host sets/],
    ['a managed identity not assigned to the host', async () => [{ credential: 'managedIdentity', clientId: '9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a' }, { IDENTITY_ENDPOINT: identity.identityEndpoint, IDENTITY_HEADER: identity.identityHeader }] as const, 3,
      /^error: MANAGED_IDENTITY_REFUSED: the managed identity endpoint refused the token request \(HTTP 400: Identity not found\) Fix: assign the identity to this host/],
    ['a managed identity that lacks the app role', async () => [{ credential: 'managedIdentity', clientId: roleless.clientId }, { IDENTITY_ENDPOINT: roleless.identityEndpoint, IDENTITY_HEADER: roleless.identityHeader }] as const, 4,
      /^error: AF10001: (?:[\w.]+: )?the managed identity lacks .* Fix: assign the roles to the identity: `pulumi config set o365-connector:credential managedIdentity`/],
    ['an unknown credential kind', async () => [{}, { O365_CREDENTIAL: 'password' }] as const, 2,
      /^error: CONFIG_INVALID: O365_CREDENTIAL: unknown credential "password"\. Fix: use one of secret, certificate, federated, managedIdentity$/],
  ];

  for (const command of ['test', 'run'] as const) {
    it.each(refusals)(`${command}: explains %s in one line with the fix, and exits with its code`, async (_name, setUp, exitCode, line) => {
      const [outputs, env] = await setUp();
      const result = await cli(command, outputs, env);
      expectOneLine(result, line);
      expect(result.code).toBe(exitCode);
      expect(result.sink).toBe('');
    });
  }

  it('test: a managed identity without the DLP role, or the Graph roles, is told to assign them with the stack, not to grant admin consent', async () => {
    const partial = await emulator.serveManagedIdentity({ roles: ['ActivityFeed.Read'] });
    const result = await cli('test', { credential: 'managedIdentity', clientId: partial.clientId, contentTypes: ['Audit.Exchange', 'DLP.All', 'ServiceHealth'], graphRoot: emulator.graphRoot }, { IDENTITY_ENDPOINT: partial.identityEndpoint, IDENTITY_HEADER: partial.identityHeader });
    expect(result.code).toBe(4);
    expect(result.stderr).toMatch(/^error: AF10001: DLP\.All: the managed identity lacks the ActivityFeed\.ReadDlp permission, which reading DLP\.All takes\. Fix: assign the roles to the identity/m);
    expect(result.stderr).toMatch(/^error: GRAPH_FORBIDDEN: Microsoft Graph refused serviceAnnouncement\/issues: the managed identity lacks ServiceHealth\.Read\.All .*Fix: assign the roles to the identity/m);
    expect(result.stderr).not.toMatch(/admin consent/);
  });

  it('run: a managed identity without the DLP role is told to assign it with the stack, not to grant admin consent', async () => {
    const partial = await emulator.serveManagedIdentity({ roles: ['ActivityFeed.Read'] });
    const result = await cli('run', { credential: 'managedIdentity', clientId: partial.clientId, contentTypes: ['Audit.Exchange', 'DLP.All'] }, { IDENTITY_ENDPOINT: partial.identityEndpoint, IDENTITY_HEADER: partial.identityHeader }, ['--since', '1h']);
    expect(result.code, result.stderr).toBe(4);
    const errors = result.stderr.split('\n').filter((line) => line.startsWith('error: '));
    expect(errors.length, result.stderr).toBeGreaterThan(0);
    for (const line of errors) expect(line).toMatch(/AF10001: DLP\.All: the managed identity lacks .*Fix: assign the roles to the identity/);
    expect(result.stderr).not.toMatch(/admin consent/);
  });

  it('fleet: each tenant file may use its own kind of credential (a secret, a federated token, a managed identity)', async () => {
    const tenants = join(dir, 'tenants');
    await mkdir(tenants, { recursive: true });
    const second = emulator.addTenant({ quiet: true });
    const third = emulator.addTenant({ quiet: true });
    second.addFederatedCredential({ issuer: issuer.issuer, subject });
    const thirdIdentity = await emulator.serveManagedIdentity({ tenantId: third.tenantId });
    const write = (name: string, content: Record<string, unknown>) => writeFile(join(tenants, name), JSON.stringify(content), { mode: 0o600 });
    await write('a.json', { ...connectorOutputs(emulator), caFile: undefined });
    await write('b.json', { ...connectorOutputs(second), caFile: undefined, clientSecret: undefined, clientSecretExpiry: undefined, credential: 'federated' });
    await write('c.json', { ...connectorOutputs(third), caFile: undefined, clientSecret: undefined, clientSecretExpiry: undefined, credential: 'managedIdentity', clientId: thirdIdentity.clientId });
    const file = await tokenFile(valid());
    const result = await new Promise<{ code: number; stdout: string; stderr: string }>((resolvePromise) => {
      execFile(process.execPath, [join(root, 'connector/bin.mjs'), 'test', '--tenants', tenants], {
        env: { ...process.env, NODE_EXTRA_CA_CERTS: emulator.caFile, O365_LOG_LEVEL: 'fatal', AZURE_FEDERATED_TOKEN_FILE: file, IDENTITY_ENDPOINT: thirdIdentity.identityEndpoint, IDENTITY_HEADER: thirdIdentity.identityHeader },
        timeout: 60_000,
      }, (error, stdout, stderr) => resolvePromise({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }));
    });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toContain('3 of 3 tenant(s) ok');
  });

  it('says that secret-expiry warnings do not apply, and warns of no readable outputs file, when no secret is configured', async () => {
    const file = await tokenFile(valid());
    const result = await cli('test', { credential: 'federated' }, { AZURE_FEDERATED_TOKEN_FILE: file, O365_LOG_LEVEL: 'info' });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/"credential":"federated","msg":"no client secret: secret-expiry warnings and the o365_client_secret_expiry_timestamp_seconds metric do not apply to this credential"/);
    expect(result.stderr).not.toMatch(/expires soon|holds the client secret/);
  });
});
