import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { createSign, createHash, randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { ConfidentialClientApplication } from '@azure/msal-node';
import { Agent, request } from 'undici';
import { startEmulator, type Emulator } from './index.ts';
import { createTestPki, type TestPki } from './tls.ts';
import { createTestIssuer } from './federated-issuer.ts';
import { callApi, msalConfiguration, msalToken, postForm } from './support.ts';

let pki: TestPki;
let emulator: Emulator;
let agent: Agent;

beforeAll(async () => {
  pki = await createTestPki();
  emulator = await startEmulator({ pki, seed: 31, enabledContentTypes: ['Audit.Exchange'] });
  agent = new Agent({ connect: { ca: pki.caCertPem } });
});
afterAll(async () => { await emulator.stop(); await agent.close(); });

const secretForm = () => ({ grant_type: 'client_credentials', client_id: emulator.clientId, client_secret: emulator.clientSecret, scope: `${emulator.apiRoot}/.default` });

/** A certificate assertion as msal-node would build it, signed by hand so each claim can be spoilt. */
function assertion(keyPem: string, certPem: string, claims: Record<string, unknown> = {}, header: Record<string, unknown> = {}): string {
  const der = Buffer.from(certPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  const now = Math.floor(Date.now() / 1000);
  const head = Buffer.from(JSON.stringify({ alg: 'RS256', typ: 'JWT', x5t: createHash('sha1').update(der).digest('base64url'), ...header })).toString('base64url');
  const body = Buffer.from(JSON.stringify({ aud: `${emulator.authorityHost}/${emulator.tenantId}/oauth2/v2.0/token`, iss: emulator.clientId, sub: emulator.clientId, jti: randomUUID(), nbf: now, exp: now + 600, ...claims })).toString('base64url');
  const signature = createSign('RSA-SHA256').update(`${head}.${body}`).sign(keyPem).toString('base64url');
  return `${head}.${body}.${signature}`;
}

describe('identity platform stand-in with an unmodified msal-node client', () => {
  it('issues a token for the client secret, and the API accepts it', async () => {
    const token = await msalToken(emulator, agent);
    expect((await callApi(emulator, agent, token, 'subscriptions/list')).status).toBe(200);
  });

  it('needs knownAuthorities: without it msal-node goes to login.microsoftonline.com for instance discovery', async () => {
    const asked: string[] = [];
    const configuration = msalConfiguration(emulator, agent, { clientSecret: emulator.clientSecret }, asked);
    const { knownAuthorities: _dropped, ...auth } = configuration.auth;
    const client = new ConfidentialClientApplication({ ...configuration, auth });
    await expect(client.acquireTokenByClientCredential({ scopes: [`${emulator.apiRoot}/.default`] })).rejects.toThrow();
    expect(asked[0]).toMatch(/^GET https:\/\/login\.microsoftonline\.com\/common\/discovery\/instance\?api-version=1\.1&authorization_endpoint=https:\/\/127\.0\.0\.1:\d+\//);
  });

  it('asks the OpenID metadata of the tenant and then the token endpoint, nothing else', async () => {
    const asked: string[] = [];
    const client = new ConfidentialClientApplication(msalConfiguration(emulator, agent, { clientSecret: emulator.clientSecret }, asked));
    await client.acquireTokenByClientCredential({ scopes: [`${emulator.apiRoot}/.default`] });
    expect(asked).toHaveLength(2);
    expect(asked[0]).toBe(`GET ${emulator.authorityHost}/${emulator.tenantId}/v2.0/.well-known/openid-configuration`);
    expect(asked[1]).toMatch(new RegExp(`^POST ${emulator.authorityHost}/${emulator.tenantId}/oauth2/v2\\.0/token\\?client-request-id=[0-9a-f-]{36}$`));
  });

  it('issues tokens for a registered certificate, PS256 with x5t#S256 and RS256 with x5t, and refuses an unregistered one', async () => {
    const client = await pki.issue({ commonName: 'o365-connector', usage: 'client' });
    const pss = { clientCertificate: { thumbprintSha256: client.thumbprintSha256, privateKey: client.keyPem, x5c: client.certPem } };
    const rsa = { clientCertificate: { thumbprint: client.thumbprintSha1, privateKey: client.keyPem } };
    await expect(msalToken(emulator, agent, pss)).rejects.toThrow(/AADSTS700027/);
    emulator.registerCertificate(client.certPem);
    await expect(msalToken(emulator, agent, pss)).resolves.toMatch(/\./);
    await expect(msalToken(emulator, agent, rsa)).resolves.toMatch(/\./);
  });

  it('works with msal-node\'s own network client when the process trusts the CA through NODE_EXTRA_CA_CERTS', async () => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', `
      import { ConfidentialClientApplication } from '@azure/msal-node';
      const e = JSON.parse(process.env.STAND_IN);
      const client = new ConfidentialClientApplication({ auth: { clientId: e.clientId, clientSecret: e.clientSecret, authority: e.authorityHost + '/' + e.tenantId, knownAuthorities: [new URL(e.authorityHost).host] } });
      const result = await client.acquireTokenByClientCredential({ scopes: [e.apiRoot + '/.default'] });
      process.stdout.write(String(result.accessToken.split('.').length));
    `], { cwd: resolve(import.meta.dirname, '../..'), env: { ...process.env, NODE_EXTRA_CA_CERTS: emulator.caFile, STAND_IN: JSON.stringify(emulator) }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { err += chunk.toString(); });
    const code = await new Promise((done) => child.on('exit', done));
    expect({ code, out, err: err.split('\n')[0] }).toEqual({ code: 0, out: '3', err: '' });
  });

  it('also serves the instance discovery document for its own host', async () => {
    const response = await request(`${emulator.authorityHost}/common/discovery/instance?api-version=1.1&authorization_endpoint=${emulator.authorityHost}/${emulator.tenantId}/oauth2/v2.0/authorize`, { dispatcher: agent });
    const body = await response.body.json() as { metadata: Array<{ aliases: string[] }> };
    expect(body.metadata[0]!.aliases).toEqual([new URL(emulator.authorityHost).host]);
  });
});

describe('token endpoint errors in the real shapes and statuses', () => {
  it.each([
    ['an unknown tenant id', '0b5c4b7e-8e0f-4c4c-9b3a-7f3e2d1c0b9a', {}, 400, 'invalid_request', 90002],
    ['an unknown tenant domain', 'fabrikam.onmicrosoft.com', {}, 400, 'invalid_request', 90002],
    ['a tenant that is no name at all', 'not a tenant', {}, 400, 'invalid_request', 900023],
    ['the organizations endpoint for client credentials', 'organizations', {}, 400, 'invalid_request', 50059],
    ['an unknown client id', undefined, { client_id: '6731de76-14a6-49ae-97bc-6eba6914391e' }, 400, 'unauthorized_client', 700016],
    ['a wrong secret (the secret id pasted instead of the value)', undefined, { client_secret: 'a1b2c3d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d' }, 401, 'invalid_client', 7000215],
    ['a scope without /.default', undefined, { scope: 'https://manage.office.com' }, 400, 'invalid_scope', 1002012],
    ['a scope that is a permission name', undefined, { scope: 'ActivityFeed.Read' }, 400, 'invalid_scope', 70011],
    ['the scope of a resource the tenant does not have', undefined, { scope: 'https://localhost:1/.default' }, 400, 'invalid_resource', 500011],
    ['no scope', undefined, { scope: '' }, 400, 'invalid_request', 900144],
    ['another grant type', undefined, { grant_type: 'password' }, 400, 'unsupported_grant_type', 70003],
    ['no credential', undefined, { client_secret: '' }, 401, 'invalid_client', 7000215],
  ])('answers %s', async (_name, tenant, override, status, error, code) => {
    const form = Object.fromEntries(Object.entries({ ...secretForm(), ...override }).filter(([key, value]) => value !== '' || key === 'client_secret'));
    const answer = await postForm(emulator, agent, tenant ?? emulator.tenantId, form);
    expect(answer.status).toBe(status);
    expect(answer.body).toMatchObject({ error, error_codes: [code] });
    expect(answer.body.error_description).toMatch(new RegExp(`^AADSTS${code}: .+\\r\\nTrace ID: [0-9a-f-]{36}\\r\\nCorrelation ID: [0-9a-f-]{36}\\r\\nTimestamp: \\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}:\\d{2}Z$`));
    expect(answer.body).toMatchObject({ timestamp: expect.stringMatching(/Z$/), trace_id: expect.any(String), correlation_id: expect.any(String) });
    expect(answer.headers['date']).toBeDefined();
  });

  it('refuses the OpenID metadata of an unknown tenant with AADSTS90002 (what msal-node sees first)', async () => {
    const response = await request(`${emulator.authorityHost}/0b5c4b7e-8e0f-4c4c-9b3a-7f3e2d1c0b9a/v2.0/.well-known/openid-configuration`, { dispatcher: agent });
    expect(response.statusCode).toBe(400);
    expect(await response.body.json()).toMatchObject({ error: 'invalid_tenant', error_codes: [90002] });
  });

  it('accepts the tenant by its domain name, as Entra does', async () => {
    expect((await postForm(emulator, agent, emulator.tenantDomain, secretForm())).status).toBe(200);
  });

  it('refuses an expired secret with AADSTS7000222 and a removed one with AADSTS7000215, and takes the rotated one', async () => {
    const own = await startEmulator({ pki, seed: 32 });
    try {
      const form = { grant_type: 'client_credentials', client_id: own.clientId, client_secret: own.clientSecret, scope: `${own.apiRoot}/.default` };
      const rotated = own.rotateSecret({ expireOld: true });
      expect(rotated).not.toBe(own.clientSecret);
      expect((await postForm(own, agent, own.tenantId, form)).body.error_codes).toEqual([7000222]);
      expect((await postForm(own, agent, own.tenantId, { ...form, client_secret: rotated })).status).toBe(200);
      const third = own.rotateSecret({ removeOld: true });
      expect((await postForm(own, agent, own.tenantId, { ...form, client_secret: rotated })).body.error_codes).toEqual([7000215]);
      expect((await postForm(own, agent, own.tenantId, { ...form, client_secret: third })).status).toBe(200);
    } finally {
      await own.stop();
    }
  });

  it('checks every part of a certificate assertion', async () => {
    const client = await pki.issue({ commonName: 'assertion-checks', usage: 'client' });
    const other = await pki.issue({ commonName: 'not-registered', usage: 'client' });
    emulator.registerCertificate(client.certPem);
    const form = (clientAssertion: string, type = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer') => ({
      grant_type: 'client_credentials', client_id: emulator.clientId, scope: `${emulator.apiRoot}/.default`, client_assertion_type: type, client_assertion: clientAssertion,
    });
    const codeOf = async (clientAssertion: string, type?: string) => (await postForm(emulator, agent, emulator.tenantId, form(clientAssertion, type))).body.error_codes?.[0];
    expect((await postForm(emulator, agent, emulator.tenantId, form(assertion(client.keyPem, client.certPem)))).status).toBe(200);
    expect(await codeOf(assertion(other.keyPem, client.certPem))).toBe(700027);
    expect(await codeOf(assertion(other.keyPem, other.certPem))).toBe(700027);
    expect(await codeOf(assertion(client.keyPem, client.certPem, { exp: Math.floor(Date.now() / 1000) - 60 }))).toBe(700024);
    expect(await codeOf(assertion(client.keyPem, client.certPem, { aud: 'https://login.microsoftonline.com/common/oauth2/v2.0/token' }))).toBe(700212);
    expect(await codeOf(assertion(client.keyPem, client.certPem, { iss: 'someone-else', sub: 'someone-else' }))).toBe(700021);
    expect(await codeOf(assertion(client.keyPem, client.certPem), 'urn:other')).toBe(90014);
    expect(await codeOf('not.a-jwt')).toBe(50027);
  });
});

describe('access tokens as the API checks them', () => {
  it('answers 401 in the real shape without a token, with a forged one, or one from another stand-in', async () => {
    const other = await startEmulator({ pki, seed: 31, enabledContentTypes: ['Audit.Exchange'] });
    try {
      const foreign = await msalToken(other, agent);
      const genuine = await msalToken(emulator, agent);
      const [head, , signature] = genuine.split('.');
      const forgedClaims = Buffer.from(JSON.stringify({ tid: emulator.tenantId, aud: emulator.apiRoot, roles: ['ActivityFeed.Read'], exp: 9999999999, nbf: 0, gen: 99 })).toString('base64url');
      for (const token of [undefined, 'garbage', foreign, `${head}.${forgedClaims}.${signature}`]) {
        const answer = await callApi(emulator, agent, token, 'subscriptions/list');
        expect(answer.status).toBe(401);
        expect(answer.body).toEqual({ Message: 'Authorization has been denied for this request.' });
        expect(answer.headers['www-authenticate']).toBe('Bearer');
      }
    } finally {
      await other.stop();
    }
  });

  it('expires tokens after their lifetime and refuses revoked ones', async () => {
    const own = await startEmulator({ pki, seed: 33, tokenLifetimeSeconds: 600 });
    try {
      const token = (await postForm(own, agent, own.tenantId, { grant_type: 'client_credentials', client_id: own.clientId, client_secret: own.clientSecret, scope: `${own.apiRoot}/.default` })).body;
      expect(token).toMatchObject({ token_type: 'Bearer', expires_in: 600 });
      expect((await callApi(own, agent, token.access_token, 'subscriptions/list')).status).toBe(200);
      own.advance(601_000);
      expect((await callApi(own, agent, token.access_token, 'subscriptions/list')).status).toBe(401);
      const fresh = await msalToken(own, agent);
      own.revokeTokens();
      expect((await callApi(own, agent, fresh, 'subscriptions/list')).status).toBe(401);
      expect(own.counters().tokensIssued).toBe(2);
    } finally {
      await own.stop();
    }
  });

  it('refuses a token issued for another resource of the tenant (Microsoft Graph)', async () => {
    const graph = await postForm(emulator, agent, emulator.tenantId, { ...secretForm(), scope: 'https://graph.microsoft.com/.default' });
    expect(graph.status).toBe(200);
    expect((await callApi(emulator, agent, graph.body.access_token, 'subscriptions/list')).status).toBe(401);
  });

  it('refuses a token whose audience is not the API root', async () => {
    const own = await startEmulator({ pki, seed: 34 });
    try {
      const token = await msalToken(own, agent);
      const [, payload] = token.split('.');
      const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8'));
      expect(claims).toMatchObject({ tid: own.tenantId, aud: own.apiRoot, appid: own.clientId, roles: ['ActivityFeed.Read', 'ActivityFeed.ReadDlp', 'ServiceHealth.Read'] });
      expect((await callApi(emulator, agent, token, `https://127.0.0.1:${emulator.port}/api/v1.0/${own.tenantId}/activity/feed/subscriptions/list`)).status).toBe(401);
    } finally {
      await own.stop();
    }
  });
});

describe('workload identity federation at the stand-in', () => {
  const trusted = createTestIssuer('https://oidc.aks.test/cluster-a');
  const stranger = createTestIssuer('https://token.actions.githubusercontent.com');
  const subject = 'system:serviceaccount:soc:o365-connector';
  const federatedForm = (token: string) => ({ grant_type: 'client_credentials', client_id: emulator.clientId, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: token, scope: `${emulator.apiRoot}/.default` });
  const hour = 3_600_000;
  beforeAll(() => {
    emulator.trustIssuer(trusted.issuer, trusted.publicKey);
    emulator.trustIssuer(stranger.issuer, stranger.publicKey);
    emulator.addFederatedCredential({ issuer: trusted.issuer, subject });
  });

  it('issues a token for a federated token whose issuer, subject and audience match a credential, and the API accepts it', async () => {
    const now = emulator.now();
    const answer = await postForm(emulator, agent, emulator.tenantId, federatedForm(trusted.token({ subject, notBefore: now, expires: new Date(now.getTime() + hour) })));
    expect(answer.status).toBe(200);
    expect((await callApi(emulator, agent, answer.body.access_token, 'subscriptions/list')).status).toBe(200);
  });

  it.each([
    ['an issuer the app has no credential for', () => stranger.token({ subject, notBefore: emulator.now(), expires: new Date(emulator.now().getTime() + hour) }), 700211],
    ['another subject of the trusted issuer', () => trusted.token({ subject: 'system:serviceaccount:default:default', notBefore: emulator.now(), expires: new Date(emulator.now().getTime() + hour) }), 70021],
    ['another audience', () => trusted.token({ subject, audience: 'api://something-else', notBefore: emulator.now(), expires: new Date(emulator.now().getTime() + hour) }), 70021],
    ['an expired token', () => trusted.token({ subject, notBefore: new Date(emulator.now().getTime() - 2 * hour), expires: new Date(emulator.now().getTime() - hour) }), 700024],
    ['a token signed by another key under the trusted issuer\'s name', () => createTestIssuer(trusted.issuer).token({ subject, notBefore: emulator.now(), expires: new Date(emulator.now().getTime() + hour) }), 50027],
  ])('refuses %s with the AADSTS code Entra ID gives', async (_name, token, code) => {
    const answer = await postForm(emulator, agent, emulator.tenantId, federatedForm(token()));
    expect(answer.status).toBe(401);
    expect(answer.body).toMatchObject({ error: 'invalid_client', error_codes: [code] });
    expect(answer.body.error_description).toMatch(new RegExp(`^AADSTS${code}: `));
  });
});

describe('managed identity endpoint of the stand-in', () => {
  it('issues a token to a caller with its header, for its tenant and the roles assigned to it; refuses a caller without the header', async () => {
    const identity = await emulator.serveManagedIdentity({ roles: ['ActivityFeed.Read'] });
    const ask = (headers: Record<string, string>, query = `api-version=2019-08-01&resource=${encodeURIComponent(emulator.apiRoot)}&client_id=${identity.clientId}`) =>
      request(`${identity.identityEndpoint}?${query}`, { headers }).then(async (response) => ({ status: response.statusCode, body: await response.body.json() as Record<string, string> }));
    expect((await ask({})).status).toBe(401);
    expect((await ask({ 'X-IDENTITY-HEADER': 'not-the-header' })).status).toBe(401);
    expect((await ask({ 'X-IDENTITY-HEADER': identity.identityHeader }, `api-version=2019-08-01&resource=${encodeURIComponent(emulator.apiRoot)}`))).toMatchObject({ status: 400, body: { error_description: 'Identity not found' } });
    const granted = await ask({ 'X-IDENTITY-HEADER': identity.identityHeader });
    expect(granted.status).toBe(200);
    const claims = JSON.parse(Buffer.from(granted.body['access_token']!.split('.')[1]!, 'base64url').toString('utf8'));
    expect(claims).toMatchObject({ tid: emulator.tenantId, appid: identity.clientId, aud: emulator.apiRoot, roles: ['ActivityFeed.Read'] });
    expect((await callApi(emulator, agent, granted.body['access_token']!, 'subscriptions/list')).status).toBe(200);
    const imds = await request(`${identity.imdsHost}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=${encodeURIComponent(emulator.apiRoot)}&client_id=${identity.clientId}`);
    expect(imds.statusCode).toBe(400);
    await imds.body.dump();
  });
});
