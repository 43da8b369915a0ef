import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer as createHttpsServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Agent } from 'undici';
import { startEmulator, type Emulator } from './index.ts';
import { createTestPki, type TestPki } from './tls.ts';
import { apiTime, callApi, listAll, msalToken } from './support.ts';

const hour = 3_600_000;
const fixedNow = new Date('2026-11-20T12:00:00Z');
const ago = (ms: number) => new Date(fixedNow.getTime() - ms);
let pki: TestPki;
let emulator: Emulator;
let agent: Agent;
let token: string;
const api = (path: string, options: Parameters<typeof callApi>[4] = {}, bearer: string | undefined = token) => callApi(emulator, agent, bearer, path, options);
const listing = (start: Date, end: Date, contentType = 'Audit.Exchange') => `subscriptions/content?contentType=${contentType}&startTime=${apiTime(start)}&endTime=${apiTime(end)}`;

beforeAll(async () => {
  pki = await createTestPki();
  emulator = await startEmulator({ pki, seed: 7, now: () => fixedNow, days: 8, blobIntervalMinutes: 10, recordsPerBlob: 3, pageSize: 7, duplicateRate: 0.3, lateBlobRate: 0.2, enabledContentTypes: ['Audit.Exchange'] });
  agent = new Agent({ connect: { ca: pki.caCertPem } });
  token = await msalToken(emulator, agent);
});
afterAll(async () => { await emulator.stop(); await agent.close(); });

describe('subscriptions', () => {
  it('starts once, answers AF20024 on a second identical start, and lists it', async () => {
    const first = await api('subscriptions/start?contentType=Audit.SharePoint', { method: 'POST' });
    expect(first).toMatchObject({ status: 200, body: { contentType: 'Audit.SharePoint', status: 'enabled', webhook: null } });
    const second = await api('subscriptions/start?contentType=Audit.SharePoint', { method: 'POST' });
    expect(second).toMatchObject({ status: 400, body: { error: { code: 'AF20024', message: 'The subscription is already enabled. No property change.' } } });
    expect((await api('subscriptions/list')).body).toContainEqual({ contentType: 'Audit.SharePoint', status: 'enabled', webhook: null });
  });

  it('answers AF20001 without a content type and AF20020 for one that does not exist', async () => {
    expect((await api('subscriptions/start', { method: 'POST' })).body.error).toEqual({ code: 'AF20001', message: 'Missing parameter: contentType.' });
    expect((await api('subscriptions/start?contentType=Audit.Teams', { method: 'POST' })).body.error).toEqual({ code: 'AF20020', message: 'The specified content type is not valid.' });
  });

  it('answers AF20022 when listing or fetching a content type without a subscription', async () => {
    expect((await api(listing(ago(hour), fixedNow, 'Audit.General'))).body.error.code).toBe('AF20022');
    const blob = emulator.corpus.blobsCreatedIn('Audit.General', ago(3 * hour), ago(2 * hour))[0]!;
    expect((await api(`audit/${blob.contentId}`)).body.error.code).toBe('AF20022');
    expect((await api('subscriptions/stop?contentType=Audit.General', { method: 'POST' })).body.error.code).toBe('AF20022');
  });

  it('after a stop answers AF20023, and after a restart never serves what became available in between', async () => {
    let clock = new Date(fixedNow);
    const own = await startEmulator({ pki, seed: 8, now: () => clock, days: 1, blobIntervalMinutes: 10, recordsPerBlob: 2, enabledContentTypes: ['Audit.General'] });
    try {
      let ownToken = await msalToken(own, agent);
      const call = (path: string, method: 'GET' | 'POST' = 'GET') => callApi(own, agent, ownToken, path, { method });
      const stoppedAt = own.now();
      expect((await call('subscriptions/stop?contentType=Audit.General', 'POST'))).toMatchObject({ status: 200, text: '' });
      expect((await call('subscriptions/list')).body).toContainEqual({ contentType: 'Audit.General', status: 'disabled', webhook: null });
      expect((await call(listing(ago(hour), fixedNow, 'Audit.General'))).body.error).toEqual({ code: 'AF20023', message: 'The subscription was disabled by a tenant admin.' });
      clock = new Date(fixedNow.getTime() + 2 * hour);
      ownToken = await msalToken(own, agent);
      expect((await call('subscriptions/start?contentType=Audit.General', 'POST')).status).toBe(200);
      const window = listing(new Date(fixedNow.getTime() - hour), new Date(fixedNow.getTime() + 2 * hour), 'Audit.General');
      const created = (await listAll(own, agent, ownToken, window)).entries.map((entry) => new Date(entry.contentCreated).getTime());
      expect(created.some((time) => time < stoppedAt.getTime())).toBe(true);
      expect(created.filter((time) => time >= stoppedAt.getTime() && time < clock.getTime())).toEqual([]);
      const gapBlob = own.corpus.blobsCreatedIn('Audit.General', new Date(stoppedAt.getTime() + 1), clock)[0]!;
      expect((await call(`audit/${gapBlob.contentId}`)).body.error.code).toBe('AF20052');
      expect([...own.groundTruthIds('Audit.General')]).not.toContain(own.corpus.records(gapBlob)[0]!.Id);
    } finally {
      await own.stop();
    }
  });
});

describe('content listing windows', () => {
  it.each([
    ['only a start time', `startTime=${apiTime(ago(hour))}`],
    ['only an end time', `endTime=${apiTime(fixedNow)}`],
    ['more than 24 hours apart', `startTime=${apiTime(ago(24 * hour + 1000))}&endTime=${apiTime(fixedNow)}`],
    ['a start more than 7 days back', `startTime=${apiTime(ago(7 * 24 * hour + 1000))}&endTime=${apiTime(ago(7 * 24 * hour - hour))}`],
    ['an end before the start', `startTime=${apiTime(fixedNow)}&endTime=${apiTime(ago(hour))}`],
    ['an end equal to the start', `startTime=${apiTime(fixedNow)}&endTime=${apiTime(fixedNow)}`],
    ['an ISO time with a zone', `startTime=${ago(hour).toISOString()}&endTime=${fixedNow.toISOString()}`],
    ['an hour that does not exist', 'startTime=2026-11-20T24:00&endTime=2026-11-20T25:00'],
    ['a day that does not exist', 'startTime=2026-11-19&endTime=2026-11-31'],
  ])('rejects a window with %s as AF20055 and counts it', async (_name, window) => {
    const before = emulator.counters().windowsRejected;
    const answer = await api(`subscriptions/content?contentType=Audit.Exchange&${window}`);
    expect(answer).toMatchObject({ status: 400, body: { error: { code: 'AF20055', message: expect.stringMatching(/^Start time and end time must both be specified/) } } });
    expect(emulator.counters().windowsRejected).toBe(before + 1);
  });

  it('accepts the three documented formats, exactly 24 hours, and a start exactly 7 days back', async () => {
    for (const [start, end] of [['2026-11-19', '2026-11-20'], ['2026-11-19T12:00', '2026-11-20T11:00'], ['2026-11-19T12:00:00', '2026-11-20T11:59:59'], [apiTime(ago(7 * 24 * hour)), apiTime(ago(6 * 24 * hour))]]) {
      expect((await api(`subscriptions/content?contentType=Audit.Exchange&startTime=${start}&endTime=${end}`)).status).toBe(200);
    }
  });

  it('lists by contentCreated with the start inclusive and the end exclusive', async () => {
    const own = await startEmulator({ pki, seed: 9, now: () => fixedNow, days: 0, enabledContentTypes: ['Audit.Exchange'] });
    try {
      const ownToken = await msalToken(own, agent);
      const at = (iso: string) => own.addContent('Audit.Exchange', { contentCreated: new Date(iso), visibleAt: new Date(iso), count: 1 }).contentId;
      const before = at('2026-11-20T09:59:59Z');
      const onStart = at('2026-11-20T10:00:00Z');
      const inside = at('2026-11-20T10:30:00Z');
      const onEnd = at('2026-11-20T11:00:00Z');
      const ids = (await listAll(own, agent, ownToken, listing(new Date('2026-11-20T10:00:00Z'), new Date('2026-11-20T11:00:00Z')))).entries.map((entry) => entry.contentId);
      expect(ids).toEqual([onStart, inside]);
      expect(ids).not.toContain(before);
      expect(ids).not.toContain(onEnd);
    } finally {
      await own.stop();
    }
  });

  it('lists the last 24 hours when both times are omitted, and pages it as a fixed window', async () => {
    const omitted = await listAll(emulator, agent, token, 'subscriptions/content?contentType=Audit.Exchange');
    const explicit = await listAll(emulator, agent, token, listing(ago(24 * hour), fixedNow));
    expect(omitted.entries.map((entry) => entry.contentId)).toEqual(explicit.entries.map((entry) => entry.contentId));
    const first = await api('subscriptions/content?contentType=Audit.Exchange');
    const next = new URL(first.headers['nextpageuri'] as string);
    expect(next.searchParams.get('startTime')).toBe(apiTime(ago(24 * hour)));
    expect(next.searchParams.get('endTime')).toBe(apiTime(fixedNow));
  });

  it('pages through many pages by NextPageUri verbatim, each entry once and in contentCreated order', async () => {
    const { entries, pages } = await listAll(emulator, agent, token, listing(ago(24 * hour), fixedNow));
    expect(pages).toBeGreaterThan(15);
    expect(new Set(entries.map((entry) => entry.contentId)).size).toBe(entries.length);
    const times = entries.map((entry) => new Date(entry.contentCreated).getTime());
    expect(times).toEqual([...times].sort((a, b) => a - b));
    const first = await api(listing(ago(24 * hour), fixedNow));
    expect(first.body).toHaveLength(7);
    expect(first.headers['nextpageuri']).toMatch(new RegExp(`^${emulator.apiRoot}/api/v1\\.0/${emulator.tenantId}/activity/feed/subscriptions/content\\?.*PublisherIdentifier=${emulator.tenantId}.*&nextPage=`));
    expect(first.body[0]).toEqual({
      contentType: 'Audit.Exchange', contentId: expect.any(String),
      contentUri: `${emulator.apiRoot}/api/v1.0/${emulator.tenantId}/activity/feed/audit/${first.body[0].contentId}`,
      contentCreated: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/),
      contentExpiration: new Date(new Date(first.body[0].contentCreated).getTime() + 7 * 24 * hour).toISOString(),
    });
  });

  it('refuses a forged, edited or foreign nextPage with AF20031', async () => {
    const first = await api(listing(ago(24 * hour), fixedNow));
    const next = new URL(first.headers['nextpageuri'] as string);
    const marker = next.searchParams.get('nextPage')!;
    const [offset, ...rest] = marker.split('R');
    const edited = [String(Number(offset) + 7), ...rest].join('R');
    const otherWindow = listing(ago(23 * hour), fixedNow);
    for (const path of [`${listing(ago(24 * hour), fixedNow)}&nextPage=0R1R2Rdeadbeef`, `${listing(ago(24 * hour), fixedNow)}&nextPage=${edited}`, `${otherWindow}&nextPage=${marker}`]) {
      expect((await api(path)).body.error).toEqual({ code: 'AF20031', message: expect.stringMatching(/^Invalid nextPage Input: .+\.$/) });
    }
    expect((await api(next.href)).status).toBe(200);
  });

  it('hides late blobs until they are available', async () => {
    const late = emulator.corpus.blobsCreatedIn('Audit.Exchange', ago(2 * hour), fixedNow).find((blob) => blob.visibleAt > fixedNow)!;
    expect(late).toBeDefined();
    const ids = (await listAll(emulator, agent, token, listing(ago(3 * hour), fixedNow))).entries.map((entry) => entry.contentId);
    expect(ids).not.toContain(late.contentId);
    expect((await api(`audit/${late.contentId}`)).body.error.code).toBe('AF20052');
  });
});

describe('content retrieval', () => {
  it('serves blobs of records whose events happened 0.5 to 12 hours before the blob, out of order, without a zone suffix', async () => {
    const entries = (await listAll(emulator, agent, token, listing(ago(6 * hour), fixedNow))).entries;
    let outOfOrder = 0;
    for (const entry of entries.slice(0, 10)) {
      const blob = await api(entry.contentUri);
      expect(blob.status).toBe(200);
      const created = new Date(entry.contentCreated).getTime();
      const times = blob.body.map((record: { CreationTime: string }) => new Date(`${record.CreationTime}Z`).getTime());
      for (const record of blob.body) {
        expect(record).toMatchObject({ Id: expect.stringMatching(/^[0-9a-f-]{36}$/), OrganizationId: emulator.tenantId, Workload: expect.any(String), RecordType: expect.any(Number), Operation: expect.any(String), UserId: expect.any(String) });
        expect(record.CreationTime).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$/);
      }
      for (const time of times) {
        expect(created - time).toBeGreaterThanOrEqual(30 * 60_000);
        expect(created - time).toBeLessThanOrEqual(12 * hour);
      }
      if (times.some((time: number, i: number) => i > 0 && time < times[i - 1]!)) outOfOrder += 1;
    }
    expect(outOfOrder).toBeGreaterThan(0);
  });

  it('answers AF20052 for an unknown content id and AF20051 once a blob is past its expiration', async () => {
    expect((await api('audit/not-a-content-id')).body.error).toEqual({ code: 'AF20052', message: 'Content ID not-a-content-id in the URL is invalid.' });
    const own = await startEmulator({ pki, seed: 10, now: () => fixedNow, days: 1, enabledContentTypes: ['Audit.SharePoint'] });
    try {
      const ownToken = await msalToken(own, agent, {});
      const entry = (await listAll(own, agent, ownToken, listing(ago(2 * hour), fixedNow, 'Audit.SharePoint'))).entries[0]!;
      expect((await callApi(own, agent, ownToken, entry.contentUri)).status).toBe(200);
      own.advance(7 * 24 * hour);
      const fresh = await msalToken(own, agent, { clientSecret: own.clientSecret });
      const expired = await callApi(own, agent, fresh, entry.contentUri);
      expect(expired).toMatchObject({ status: 400, body: { error: { code: 'AF20051', message: `Content requested with the key ${entry.contentId} has already expired. Content older than 7 days cannot be retrieved.` } } });
    } finally {
      await own.stop();
    }
  });
});

describe('tenant, permissions and auditing', () => {
  it('answers AF20010 when the tenant in the URL is not the tenant of the token, and AF20013 when it is no GUID', async () => {
    const other = await api(`https://127.0.0.1:${emulator.port}/api/v1.0/7f3e2d1c-0b9a-4c4c-9b3a-0b5c4b7e8e0f/activity/feed/subscriptions/list`);
    expect(other).toMatchObject({ status: 401, body: { error: { code: 'AF20010', message: `The tenant ID passed in the URL (7f3e2d1c-0b9a-4c4c-9b3a-0b5c4b7e8e0f) does not match the tenant ID passed in the access token (${emulator.tenantId}).` } } });
    expect((await api(`https://127.0.0.1:${emulator.port}/api/v1.0/contoso.onmicrosoft.com/activity/feed/subscriptions/list`)).body.error.code).toBe('AF20013');
  });

  it('answers AF10001 for DLP.All (start, list and blob fetch) when the token lacks ActivityFeed.ReadDlp', async () => {
    const own = await startEmulator({ pki, seed: 11, now: () => fixedNow, grantedRoles: ['ActivityFeed.Read'], enabledContentTypes: ['DLP.All', 'Audit.Exchange'] });
    try {
      const reduced = await msalToken(own, agent);
      const call = (path: string, method: 'GET' | 'POST' = 'GET', bearer = reduced) => callApi(own, agent, bearer, path, { method });
      const denied = { status: 401, body: { error: { code: 'AF10001', message: 'The permission set (ActivityFeed.Read) sent in the request did not include the expected permission ActivityFeed.ReadDlp.' } } };
      expect(await call('subscriptions/start?contentType=DLP.All', 'POST')).toMatchObject(denied);
      expect(await call(listing(ago(hour), fixedNow, 'DLP.All'))).toMatchObject(denied);
      const blob = own.corpus.blobsCreatedIn('DLP.All', ago(3 * hour), ago(2 * hour))[0]!;
      expect(await call(`audit/${blob.contentId}`)).toMatchObject(denied);
      expect(await call('resources/dlpSensitiveTypes')).toMatchObject(denied);
      expect((await call(listing(ago(hour), fixedNow))).status).toBe(200);
      own.setGrantedRoles(['ActivityFeed.Read', 'ActivityFeed.ReadDlp']);
      const full = await msalToken(own, agent, { clientSecret: own.rotateSecret() });
      expect((await call(`audit/${blob.contentId}`, 'GET', full)).status).toBe(200);
      expect((await call(`audit/${blob.contentId}`)).body.error.code).toBe('AF10001');
    } finally {
      await own.stop();
    }
  });

  it('answers a tenant without audit logging with the misleading DataServiceException on every operation', async () => {
    emulator.setAuditingEnabled(false);
    try {
      for (const [path, method, operation] of [['subscriptions/start?contentType=Audit.General', 'POST', 'StartSubscription'], ['subscriptions/list', 'GET', 'ListSubscriptions'], [listing(ago(hour), fixedNow), 'GET', 'ListContent']] as const) {
        const answer = await api(path, { method });
        expect(answer.status).toBe(400);
        expect(answer.body.error.code).toMatch(new RegExp(`^${operation} \\[CorrId=[0-9a-f-]{36}\\]\\[TenantId=${emulator.tenantId},ContentType=[^,]*,ApplicationId=${emulator.clientId},PublisherId=${emulator.tenantId}\\]\\[AppId$`));
        expect(answer.body.error.message).toMatch(new RegExp(`^${emulator.clientId.slice(1)}\\] failed\\. Exception: Microsoft\\.Office\\.Compliance\\.Audit\\.DataServiceException: Tenant ${emulator.tenantId} does not exist\\.\\r\\n`));
      }
    } finally {
      emulator.setAuditingEnabled(true);
    }
  });

  it('puts a Date header on every answer, errors included', async () => {
    for (const answer of [await api('subscriptions/list'), await api('audit/x'), await api('subscriptions/list', {}, undefined), await api(listing(fixedNow, ago(hour)))]) {
      expect(answer.headers['date']).toBe(fixedNow.toUTCString());
    }
  });

  it('serves DLP sensitive type names and checks Accept-Language', async () => {
    const names = await api('resources/dlpSensitiveTypes');
    expect(names.status).toBe(200);
    expect(names.body).toContainEqual({ id: '50842eb7-edc8-4019-85dd-5a5c1f2bb085', name: expect.any(String) });
    expect((await api('resources/dlpSensitiveTypes', { headers: { 'accept-language': 'en-US, es' } })).body.error.code).toBe('AF20053');
    expect((await api('resources/dlpSensitiveTypes', { headers: { 'accept-language': '*;q=x' } })).body.error.code).toBe('AF20054');
  });
});

describe('webhooks', () => {
  let receiver: Server;
  let address: string;
  let answer = 200;
  const received: Array<{ headers: Record<string, string | string[] | undefined>; body: unknown }> = [];

  beforeAll(async () => {
    const server = await pki.issue({ commonName: 'webhook', usage: 'server', hosts: ['127.0.0.1'] });
    receiver = createHttpsServer({ cert: server.certPem, key: server.keyPem }, (request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        received.push({ headers: request.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
        response.writeHead(answer).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    address = `https://127.0.0.1:${(receiver.address() as AddressInfo).port}/o365`;
  });
  afterAll(() => new Promise<void>((resolve) => receiver.close(() => resolve())));

  it('validates the webhook on start with Webhook-ValidationCode, and refuses the start when it is not answered 200', async () => {
    answer = 500;
    const body = JSON.stringify({ webhook: { address, authId: 'o365activityapinotification', expiration: '' } });
    const refused = await api('subscriptions/start?contentType=Audit.AzureActiveDirectory', { method: 'POST', body });
    expect(refused).toMatchObject({ status: 400, body: { error: { code: 'AF20021', message: `The webhook endpoint {${address}) could not be validated. The endpoint did not return HTTP 200.` } } });
    expect((await api('subscriptions/list')).body.map((s: { contentType: string }) => s.contentType)).not.toContain('Audit.AzureActiveDirectory');
    const validation = received.at(-1)!;
    expect(validation.headers['webhook-validationcode']).toMatch(/\S+/);
    expect(validation.body).toEqual({ validationCode: validation.headers['webhook-validationcode'] });
    expect(validation.headers['webhook-authid']).toBe('o365activityapinotification');

    answer = 200;
    const started = await api('subscriptions/start?contentType=Audit.AzureActiveDirectory', { method: 'POST', body });
    expect(started).toMatchObject({ status: 200, body: { contentType: 'Audit.AzureActiveDirectory', status: 'enabled', webhook: { status: 'enabled', address, authId: 'o365activityapinotification', expiration: null } } });
    expect((await api('subscriptions/start?contentType=Audit.AzureActiveDirectory', { method: 'POST', body })).body.error.code).toBe('AF20024');
  });

  it('refuses a webhook address that is not HTTPS, and an expiration in the past', async () => {
    const plain = await api('subscriptions/start?contentType=Audit.General', { method: 'POST', body: JSON.stringify({ webhook: { address: 'http://127.0.0.1:9/hook' } }) });
    expect(plain.body.error).toEqual({ code: 'AF20021', message: 'The webhook endpoint {http://127.0.0.1:9/hook) could not be validated. The address must begin with HTTPS.' });
    const past = await api('subscriptions/start?contentType=Audit.General', { method: 'POST', body: JSON.stringify({ webhook: { address, expiration: '2020-01-01T00:00:00Z' } }) });
    expect(past.body.error.code).toBe('AF20003');
  });

  it('notifies new content with Webhook-AuthID, tenantId and clientId, and lists the attempts', async () => {
    const blob = emulator.addContent('Audit.AzureActiveDirectory', { count: 2 });
    const before = received.length;
    await emulator.tick();
    const notification = received.slice(before).find((entry) => Array.isArray(entry.body))!;
    expect(notification.headers['webhook-authid']).toBe('o365activityapinotification');
    expect(notification.body).toEqual([{
      tenantId: emulator.tenantId, clientId: emulator.clientId, contentType: 'Audit.AzureActiveDirectory', contentId: blob.contentId,
      contentUri: `${emulator.apiRoot}/api/v1.0/${emulator.tenantId}/activity/feed/audit/${blob.contentId}`,
      contentCreated: fixedNow.toISOString(), contentExpiration: blob.contentExpiration.toISOString(),
    }]);
    // contentCreated is now, and the default window (the last 24 hours) excludes its end: ask past it.
    const attempts = await api(`subscriptions/notifications?contentType=Audit.AzureActiveDirectory&startTime=${apiTime(ago(hour))}&endTime=${apiTime(new Date(fixedNow.getTime() + 60_000))}`);
    expect(attempts.status).toBe(200);
    expect(attempts.body).toEqual([expect.objectContaining({ contentId: blob.contentId, notificationSent: fixedNow.toISOString(), notificationStatus: 'success' })]);
    await emulator.tick();
    expect(received.slice(before).filter((entry) => Array.isArray(entry.body))).toHaveLength(1);
  });

  it('retries a notification the webhook did not answer 200, and lists both attempts', async () => {
    answer = 503;
    const blob = emulator.addContent('Audit.AzureActiveDirectory', { count: 1, contentCreated: new Date(fixedNow.getTime() - 60_000) });
    const before = received.length;
    await emulator.tick();
    answer = 200;
    await emulator.tick();
    const posts = received.slice(before).filter((entry) => Array.isArray(entry.body)) as Array<{ body: Array<{ contentId: string }> }>;
    expect(posts.map((post) => post.body.map((entry) => entry.contentId))).toEqual([[blob.contentId], [blob.contentId]]);
    await emulator.tick();
    expect(received.length).toBe(before + 2);
    const attempts = await api(`subscriptions/notifications?contentType=Audit.AzureActiveDirectory&startTime=${apiTime(ago(hour))}&endTime=${apiTime(fixedNow)}`);
    expect(attempts.body.filter((attempt: { contentId: string }) => attempt.contentId === blob.contentId).map((attempt: { notificationStatus: string }) => attempt.notificationStatus)).toEqual(['failed', 'success']);
  });
});
