import { describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stackOutputsSchema } from '../../contract/stack-outputs.ts';
import { type Emulator, type EmulatorOptions, type EmulatorTenant } from './index.ts';
import { apiTime, callApi, listAll, msalToken, postForm } from './support.ts';
import { standInsOfThisFile } from './stand-ins.ts';

const hour = 3_600_000;
const fixedNow = new Date('2026-11-20T12:00:00Z');
// Covers the whole corpus (half a day of history) and the minute after now.
const listing = `subscriptions/content?contentType=Audit.Exchange&startTime=${apiTime(new Date(fixedNow.getTime() - 20 * hour))}&endTime=${apiTime(new Date(fixedNow.getTime() + 60_000))}`;
const standIns = standInsOfThisFile();

async function emulatorWith(options: EmulatorOptions = {}): Promise<Emulator> {
  const emulator = await standIns.start({ now: () => fixedNow, days: 0.5, blobIntervalMinutes: 60, recordsPerBlob: 3, enabledContentTypes: ['Audit.Exchange'], ...options });
  return emulator;
}

function claimsOf(token: string): { tid: string; appid: string } {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8'));
}

/** Lists the tenant's Audit.Exchange and fetches every blob: the record ids it served, and the listing. */
async function crawl(tenant: EmulatorTenant, token: string): Promise<{ ids: string[]; contentIds: string[]; contentUris: string[] }> {
  const { entries } = await listAll(tenant, standIns.agent, token, listing);
  const ids: string[] = [];
  for (const entry of entries) {
    const blob = await callApi(tenant, standIns.agent, token, entry.contentUri);
    expect(blob.status).toBe(200);
    ids.push(...(blob.body as Array<{ Id: string }>).map((record) => record.Id));
  }
  return { ids, contentIds: entries.map((entry) => entry.contentId), contentUris: entries.map((entry) => entry.contentUri) };
}

const form = (tenant: EmulatorTenant, secret = tenant.clientSecret, clientId = tenant.clientId) => ({
  grant_type: 'client_credentials', client_id: clientId, client_secret: secret, scope: `${tenant.apiRoot}/.default`,
});

describe('several tenants on one stand-in', () => {
  it('serves two tenants at once on one host, each with its own ids, tokens, corpus and ground truth', async () => {
    const emulator = await emulatorWith({ seed: 61 });
    const [a] = emulator.tenants();
    const b = emulator.addTenant();
    expect(a!.tenantId).toBe(emulator.tenantId);
    expect(emulator.tenants().map((tenant) => tenant.tenantId)).toEqual([emulator.tenantId, b.tenantId]);
    expect(new Set([a!.tenantId, b.tenantId]).size).toBe(2);
    expect(new Set([a!.clientId, b.clientId]).size).toBe(2);
    expect(new Set([a!.clientSecret, b.clientSecret]).size).toBe(2);
    expect(b.tenantDomain).not.toBe(a!.tenantDomain);
    expect(b.authorityHost).toBe(emulator.authorityHost);
    expect(b.apiRoot).toBe(emulator.apiRoot);

    const tokenA = await msalToken(a!, standIns.agent);
    const tokenB = await msalToken(b, standIns.agent);
    expect(claimsOf(tokenA)).toMatchObject({ tid: a!.tenantId, appid: a!.clientId });
    expect(claimsOf(tokenB)).toMatchObject({ tid: b.tenantId, appid: b.clientId });

    const servedA = await crawl(a!, tokenA);
    const servedB = await crawl(b, tokenB);
    expect(servedA.ids.length).toBeGreaterThan(0);
    expect(new Set(servedA.ids)).toEqual(a!.groundTruth('Audit.Exchange'));
    expect(new Set(servedB.ids)).toEqual(b.groundTruth('Audit.Exchange'));
    // The same corpus options, yet nothing in common: a test can tell whose record landed where.
    expect(servedA.ids.length).toBe(servedB.ids.length);
    expect(servedA.ids.filter((id) => b.groundTruth().has(id))).toEqual([]);
    expect(servedA.contentIds.filter((id) => servedB.contentIds.includes(id))).toEqual([]);
    expect(servedB.contentUris.every((uri) => uri.startsWith(`${b.apiRoot}/api/v1.0/${b.tenantId}/activity/feed/audit/`))).toBe(true);
    const [someRecord] = b.groundTruthBytes().values();
    expect(JSON.parse(someRecord!.toString('utf8'))).toMatchObject({ OrganizationId: b.tenantId });

    expect(a!.counters()).toMatchObject({ tokensIssued: 1, blobsServed: servedA.contentIds.length, recordsServed: servedA.ids.length });
    expect(b.counters()).toMatchObject({ tokensIssued: 1, blobsServed: servedB.contentIds.length, recordsServed: servedB.ids.length });
    expect(emulator.counters()).toMatchObject({ tokensIssued: 2, blobsServed: servedA.contentIds.length + servedB.contentIds.length });
  });

  it('draws each added tenant from the seed and its index, and takes its own corpus options', async () => {
    const one = await emulatorWith({ seed: 62 });
    const other = await emulatorWith({ seed: 62 });
    const [x, y] = [one.addTenant(), other.addTenant()];
    expect([x.index, x.tenantId, x.clientId, x.clientSecret, x.tenantDomain]).toEqual([1, y.tenantId, y.clientId, y.clientSecret, y.tenantDomain]);
    expect(x.groundTruth()).toEqual(y.groundTruth());
    const sparse = one.addTenant({ blobIntervalMinutes: 240, recordsPerBlob: 7, tenantId: '0f1e2d3c-4b5a-4697-8877-665544332211', clientSecret: 'given~secret' });
    expect(sparse).toMatchObject({ index: 2, tenantId: '0f1e2d3c-4b5a-4697-8877-665544332211', clientSecret: 'given~secret' });
    expect(sparse.groundTruthCount('Audit.Exchange').records / sparse.groundTruthCount('Audit.Exchange').blobs).toBe(7);
    expect(() => one.addTenant({ tenantId: sparse.tenantId.toUpperCase() })).toThrow(/already serves/);
  });

  it('refuses a token of one tenant on another tenant\'s URL with AF20010, and one tenant\'s app or secret at another\'s token endpoint', async () => {
    const emulator = await emulatorWith({ seed: 63 });
    const b = emulator.addTenant();
    const tokenA = await msalToken(emulator, standIns.agent);
    const crossed = await callApi(b, standIns.agent, tokenA, 'subscriptions/list');
    expect(crossed).toMatchObject({ status: 401, body: { error: { code: 'AF20010', message: `The tenant ID passed in the URL (${b.tenantId}) does not match the tenant ID passed in the access token (${emulator.tenantId}).` } } });

    const otherApp = await postForm(emulator, standIns.agent, b.tenantId, form(emulator));
    expect(otherApp.status).toBe(400);
    expect(otherApp.body).toMatchObject({ error: 'unauthorized_client', error_codes: [700016] });
    expect(otherApp.body.error_description).toContain(`was not found in the directory '${b.tenantDomain}'`);
    const otherSecret = await postForm(emulator, standIns.agent, b.tenantId, form(b, emulator.clientSecret));
    expect(otherSecret).toMatchObject({ status: 401, body: { error: 'invalid_client', error_codes: [7000215] } });

    const byDomain = await postForm(emulator, standIns.agent, b.tenantDomain, form(b));
    expect(byDomain.status).toBe(200);
    expect(claimsOf(byDomain.body.access_token).tid).toBe(b.tenantId);
    expect((await callApi(b, standIns.agent, byDomain.body.access_token, 'subscriptions/list')).status).toBe(200);
    expect(b.counters()).toMatchObject({ tokensIssued: 1, tokenFailures: 2 });
    expect(emulator.tenants()[0]!.counters()).toMatchObject({ tokensIssued: 1, tokenFailures: 0, unauthorized: 0 });
  });

  it('keeps quotas, faults, subscriptions, auditing and roles per tenant: A spending its quota never throttles B', async () => {
    const emulator = await emulatorWith({ seed: 64, quotaPerMinute: 3 });
    const a = emulator.tenants()[0]!;
    const b = emulator.addTenant({ quotaPerMinute: 100 });
    const [tokenA, tokenB] = [await msalToken(a, standIns.agent), await msalToken(b, standIns.agent)];
    // The same PublisherIdentifier on both: buckets are per tenant, as at Microsoft.
    const publisher = 'c0ffee00-0000-4000-8000-000000000001';
    const statusesA = [];
    for (let i = 0; i < 4; i += 1) statusesA.push((await callApi(a, standIns.agent, tokenA, 'subscriptions/list', { publisher })).status);
    expect(statusesA).toEqual([200, 200, 200, 429]);
    expect((await callApi(b, standIns.agent, tokenB, 'subscriptions/list', { publisher })).status).toBe(200);
    expect([a.counters().throttled, b.counters().throttled, emulator.counters().throttled]).toEqual([1, 0, 1]);

    b.setFaults({ serverErrorRate: 1 });
    expect(a.faults()).toEqual({});
    expect((await callApi(b, standIns.agent, tokenB, 'subscriptions/list')).body.error.code).toBe('AF50000');
    b.setFaults({});

    expect((await callApi(b, standIns.agent, tokenB, 'subscriptions/start?contentType=Audit.General', { method: 'POST' })).status).toBe(200);
    expect([...b.subscriptions().keys()]).toEqual(['Audit.Exchange', 'Audit.General']);
    expect([...a.subscriptions().keys()]).toEqual(['Audit.Exchange']);

    b.setAuditingEnabled(false);
    expect((await callApi(b, standIns.agent, tokenB, 'subscriptions/list')).body.error.message).toContain(`Tenant ${b.tenantId} does not exist`);
    b.setAuditingEnabled(true);
    b.setGrantedRoles(['ServiceHealth.Read']);
    const narrow = await msalToken(b, standIns.agent);
    expect((await callApi(b, standIns.agent, narrow, 'subscriptions/list')).body.error.code).toBe('AF10001');
    b.revokeTokens();
    expect((await callApi(b, standIns.agent, tokenB, 'subscriptions/list')).status).toBe(401);
    emulator.advance(60_000);
    expect((await callApi(a, standIns.agent, tokenA, 'subscriptions/list', { publisher })).status).toBe(200);
  });

  it('adds a quiet tenant at run time, serves what is added to it, and after removal answers it as an unknown tenant', async () => {
    const emulator = await emulatorWith({ seed: 65 });
    const quiet = emulator.addTenant({ quiet: true, enabledContentTypes: ['Audit.General'] });
    expect(quiet.groundTruthCount()).toEqual({ records: 0, blobs: 0 });
    const token = await msalToken(quiet, standIns.agent);
    const window = `startTime=${apiTime(new Date(fixedNow.getTime() - hour))}&endTime=${apiTime(new Date(fixedNow.getTime() + 1000))}`;
    expect((await callApi(quiet, standIns.agent, token, `subscriptions/content?contentType=Audit.General&${window}`)).body).toEqual([]);
    const blob = quiet.addContent('Audit.General', { count: 2 });
    const listed = await callApi(quiet, standIns.agent, token, `subscriptions/content?contentType=Audit.General&${window}`);
    expect(listed.body.map((entry: { contentId: string }) => entry.contentId)).toEqual([blob.contentId]);
    expect(quiet.groundTruth().size).toBe(2);
    expect(emulator.groundTruth('Audit.General').has([...quiet.groundTruth()][0]!)).toBe(false);

    const tokenA = await msalToken(emulator, standIns.agent);
    expect(emulator.removeTenant(quiet.tenantId)).toBe(true);
    expect(emulator.removeTenant(quiet.tenantId)).toBe(false);
    expect(emulator.tenants().map((tenant) => tenant.tenantId)).toEqual([emulator.tenantId]);
    const neverServed = '5e5e5e5e-0000-4000-8000-00000000dead';
    for (const tenant of [quiet.tenantId, neverServed]) {
      const refused = await postForm(emulator, standIns.agent, tenant, form(quiet));
      expect(refused).toMatchObject({ status: 400, body: { error: 'invalid_request', error_codes: [90002] } });
      const crossed = await callApi(emulator, standIns.agent, tokenA, `${emulator.apiRoot}/api/v1.0/${tenant}/activity/feed/subscriptions/list`);
      expect(crossed).toMatchObject({ status: 401, body: { error: { code: 'AF20010' } } });
    }
    expect((await postForm(emulator, standIns.agent, quiet.tenantDomain, form(quiet))).body.error_codes).toEqual([90002]);
    // Its own tokens die with it.
    expect(await callApi(quiet, standIns.agent, token, 'subscriptions/list')).toMatchObject({ status: 401, body: { Message: 'Authorization has been denied for this request.' } });
    const again = emulator.addTenant();
    expect(again.index).toBe(2);
    expect(again.tenantId).not.toBe(quiet.tenantId);
  });

  it('writes each tenant\'s stack outputs, readable by its owner only, in the form the connector reads', async () => {
    const emulator = await emulatorWith({ seed: 66 });
    const b = emulator.addTenant();
    const dir = await mkdtemp(join(tmpdir(), 'o365-tenants-'));
    try {
      for (const tenant of emulator.tenants()) await tenant.writeStackOutputs(join(dir, `${tenant.tenantId}.json`));
      const written = stackOutputsSchema.parse(JSON.parse(await readFile(join(dir, `${b.tenantId}.json`), 'utf8')));
      expect(written).toEqual(b.stackOutputs());
      expect(written).toMatchObject({ tenantId: b.tenantId, publisherId: b.tenantId, clientId: b.clientId, clientSecret: b.clientSecret, tenantDomain: b.tenantDomain, apiRoot: emulator.apiRoot, caFile: emulator.caFile });
      expect((await stat(join(dir, `${b.tenantId}.json`))).mode & 0o777).toBe(0o600);
      expect(emulator.stackOutputs().tenantId).toBe(emulator.tenantId);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('serves 500 quiet tenants from one server, each answering with its own token', async () => {
    const emulator = await emulatorWith({ seed: 67, quiet: true, enabledContentTypes: ['Audit.General'] });
    const added = Array.from({ length: 500 }, () => emulator.addTenant());
    const tenants = emulator.tenants();
    expect(tenants).toHaveLength(501);
    expect(new Set(tenants.map((tenant) => tenant.tenantId)).size).toBe(501);
    expect(new Set(tenants.map((tenant) => tenant.clientId)).size).toBe(501);
    expect(new Set(tenants.map((tenant) => tenant.tenantDomain)).size).toBe(501);
    for (const tenant of [added[0]!, added[249]!, added[499]!]) {
      const token = await msalToken(tenant, standIns.agent);
      expect(await callApi(tenant, standIns.agent, token, 'subscriptions/list')).toMatchObject({ status: 200, body: [{ contentType: 'Audit.General', status: 'enabled', webhook: null }] });
      expect(tenant.counters()).toMatchObject({ tokensIssued: 1, apiRequests: 1 });
    }
    expect(emulator.counters()).toMatchObject({ tokensIssued: 3, apiRequests: 3 });
    await emulator.tick();
    expect(added[100]!.groundTruthCount()).toEqual({ records: 0, blobs: 0 });
  });
});
