import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { startEmulator, type Emulator } from './index.ts';
import { createTestPki, type TestPki } from './tls.ts';
import { MsalTokenProvider } from '../../connector/auth/token-provider.ts';
import { ConnectorError } from '../../connector/errors.ts';

const fixedNow = new Date('2026-11-20T12:00:00Z');
let pki: TestPki;
let emulator: Emulator;
let agent: Agent;
let token: string;

async function call(path: string, options: { method?: 'GET' | 'POST'; body?: string; token?: string; publisher?: string | null } = {}) {
  const url = new URL(path.startsWith('https://') ? path : `${emulator.apiRoot}/api/v1.0/${emulator.tenantId}/activity/feed/${path}`);
  if (options.publisher !== null && !url.searchParams.has('PublisherIdentifier')) url.searchParams.set('PublisherIdentifier', options.publisher ?? emulator.tenantId);
  const response = await request(url, {
    method: options.method ?? 'GET', dispatcher: agent,
    headers: { authorization: `Bearer ${options.token ?? token}`, 'content-type': 'application/json' },
    ...(options.body !== undefined ? { body: options.body } : {}),
  });
  const text = await response.body.text();
  return { status: response.statusCode, headers: response.headers, body: text ? JSON.parse(text) : undefined };
}

function iso(date: Date): string {
  return date.toISOString().slice(0, 19);
}

beforeAll(async () => {
  pki = await createTestPki();
  emulator = await startEmulator({ pki, seed: 7, now: () => fixedNow, days: 2, blobIntervalMinutes: 10, recordsPerBlob: 5, pageSize: 7, duplicateRate: 0.3, lateBlobRate: 0.2 });
  agent = new Agent({ connect: { ca: pki.caCertPem } });
  token = await new MsalTokenProvider({ tenantId: emulator.tenantId, clientId: emulator.clientId, credential: { kind: 'secret', secret: emulator.clientSecret }, authorityHost: emulator.authorityHost, apiRoot: emulator.apiRoot, dispatcher: agent }).getToken();
});
afterAll(async () => { await emulator.stop(); await agent.close(); });

describe('identity platform stand-in', () => {
  const provider = (overrides: Partial<ConstructorParameters<typeof MsalTokenProvider>[0]>) => new MsalTokenProvider({
    tenantId: emulator.tenantId, clientId: emulator.clientId, credential: { kind: 'secret', secret: emulator.clientSecret },
    authorityHost: emulator.authorityHost, apiRoot: emulator.apiRoot, dispatcher: agent, ...overrides,
  });
  const failure = async (p: MsalTokenProvider) => { try { await p.getToken(); return undefined; } catch (error) { return error as ConnectorError; } };

  it('issues tokens to an unmodified msal-node client with a secret', async () => {
    expect(token.split('.')).toHaveLength(3);
  });

  it('issues tokens for a registered certificate assertion and refuses an unregistered one', async () => {
    const client = await pki.issue({ commonName: 'o365-connector', usage: 'client' });
    expect((await failure(provider({ credential: { kind: 'certificate', path: client.combinedFile } })))?.code).toBe('AADSTS700027');
    emulator.registerCertificate(client.certPem);
    await expect(provider({ credential: { kind: 'certificate', path: client.combinedFile } }).getToken()).resolves.toMatch(/\./);
  });

  it.each([
    ['wrong tenant', { tenantId: '00000000-0000-0000-0000-000000000001' }, 'AADSTS90002'],
    ['unknown client id', { clientId: '00000000-0000-0000-0000-000000000002' }, 'AADSTS700016'],
    ['wrong secret', { credential: { kind: 'secret' as const, secret: 'a1b2c3d4-secret-id-not-value' } }, 'AADSTS7000215'],
    ['scope of another resource', { apiRoot: 'https://manage.office.com' }, 'AADSTS500011'],
  ])('answers %s with the real AADSTS code', async (_name, overrides, code) => {
    expect((await failure(provider(overrides)))?.code).toBe(code);
  });

  it('answers a scope without /.default with AADSTS1002012 in the documented error shape', async () => {
    const response = await request(`${emulator.authorityHost}/${emulator.tenantId}/oauth2/v2.0/token`, {
      method: 'POST', dispatcher: agent, headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: emulator.clientId, client_secret: emulator.clientSecret, scope: emulator.apiRoot }).toString(),
    });
    const body = await response.body.json() as Record<string, unknown>;
    expect(response.statusCode).toBe(400);
    expect(body).toMatchObject({ error: 'invalid_scope', error_codes: [1002012] });
    expect(body['error_description']).toMatch(/^AADSTS1002012: /);
    expect(Object.keys(body)).toEqual(expect.arrayContaining(['timestamp', 'trace_id', 'correlation_id']));
  });

  it('rejects an expired secret with AADSTS7000222 and accepts a rotated one', async () => {
    const rotated = emulator.rotateSecret({ expireOld: true });
    expect((await failure(provider({})))?.code).toBe('AADSTS7000222');
    await expect(provider({ credential: { kind: 'secret', secret: rotated } }).getToken()).resolves.toMatch(/\./);
  });
});

describe('Management Activity API stand-in', () => {
  it('requires a bearer token, and refuses revoked ones', async () => {
    expect((await call('subscriptions/list', { token: 'not-a-token' })).status).toBe(401);
  });

  it('starts a subscription once and answers AF20024 on a second start', async () => {
    const first = await call('subscriptions/start?contentType=Audit.Exchange', { method: 'POST' });
    expect(first).toMatchObject({ status: 200, body: { contentType: 'Audit.Exchange', status: 'enabled', webhook: null } });
    const second = await call('subscriptions/start?contentType=Audit.Exchange', { method: 'POST' });
    expect(second).toMatchObject({ status: 400, body: { error: { code: 'AF20024' } } });
    const list = await call('subscriptions/list');
    expect(list.body).toContainEqual({ contentType: 'Audit.Exchange', status: 'enabled', webhook: null });
  });

  it('answers AF20020 for an unknown content type and AF20022 when listing without a subscription', async () => {
    expect((await call('subscriptions/start?contentType=Audit.Teams', { method: 'POST' })).body.error.code).toBe('AF20020');
    expect((await call(`subscriptions/content?contentType=Audit.General&startTime=${iso(new Date(fixedNow.getTime() - 3_600_000))}&endTime=${iso(fixedNow)}`)).body.error.code).toBe('AF20022');
  });

  it.each([
    ['only a start time', `startTime=${iso(new Date(fixedNow.getTime() - 3_600_000))}`],
    ['only an end time', `endTime=${iso(fixedNow)}`],
    ['more than 24 hours apart', `startTime=${iso(new Date(fixedNow.getTime() - 25 * 3_600_000))}&endTime=${iso(fixedNow)}`],
    ['a start more than 7 days back', `startTime=${iso(new Date(fixedNow.getTime() - 7 * 86_400_000 - 60_000))}&endTime=${iso(new Date(fixedNow.getTime() - 7 * 86_400_000 + 3_600_000))}`],
    ['an end before the start', `startTime=${iso(fixedNow)}&endTime=${iso(new Date(fixedNow.getTime() - 3_600_000))}`],
    ['an undocumented format', `startTime=${fixedNow.toISOString()}&endTime=${fixedNow.toISOString()}`],
  ])('rejects a window with %s as AF20055 and counts it', async (_name, window) => {
    const before = emulator.counters().windowsRejected;
    const answer = await call(`subscriptions/content?contentType=Audit.Exchange&${window}`);
    expect(answer).toMatchObject({ status: 400, body: { error: { code: 'AF20055' } } });
    expect(emulator.counters().windowsRejected).toBe(before + 1);
  });

  it('accepts the three documented time formats', async () => {
    for (const [start, end] of [['2026-11-19', '2026-11-20'], ['2026-11-19T12:00', '2026-11-20T11:00'], ['2026-11-19T12:00:00', '2026-11-20T11:59:59']]) {
      expect((await call(`subscriptions/content?contentType=Audit.Exchange&startTime=${start}&endTime=${end}`)).status).toBe(200);
    }
  });

  it('pages through NextPageUri verbatim, lists by contentCreated with start inclusive and end exclusive, and rejects a bogus page', async () => {
    const start = new Date(fixedNow.getTime() - 24 * 3_600_000);
    let next: string | undefined = `subscriptions/content?contentType=Audit.Exchange&startTime=${iso(start)}&endTime=${iso(fixedNow)}`;
    const entries: Array<{ contentId: string; contentCreated: string; contentUri: string }> = [];
    let pages = 0;
    while (next) {
      const answer = await call(next);
      expect(answer.status).toBe(200);
      expect(answer.body.length).toBeLessThanOrEqual(7);
      entries.push(...answer.body);
      next = answer.headers['nextpageuri'] as string | undefined;
      pages += 1;
    }
    expect(pages).toBeGreaterThan(5);
    expect(new Set(entries.map((e) => e.contentId)).size).toBe(entries.length);
    for (const entry of entries) {
      const created = new Date(entry.contentCreated).getTime();
      expect(created).toBeGreaterThanOrEqual(start.getTime());
      expect(created).toBeLessThan(fixedNow.getTime());
    }
    const bogus = await call(`subscriptions/content?contentType=Audit.Exchange&startTime=${iso(start)}&endTime=${iso(fixedNow)}&nextPage=0R1R2Rdeadbeef`);
    expect(bogus.body.error.code).toBe('AF20031');
  });

  it('serves blobs of realistic records, hides late blobs until they are available, and answers AF20052 for unknown ids', async () => {
    const answer = await call(`subscriptions/content?contentType=Audit.Exchange&startTime=${iso(new Date(fixedNow.getTime() - 3 * 3_600_000))}&endTime=${iso(fixedNow)}`);
    const blob = await call(answer.body[0].contentUri);
    expect(blob.status).toBe(200);
    for (const record of blob.body) {
      expect(record).toMatchObject({ OrganizationId: emulator.tenantId, Workload: expect.any(String), RecordType: expect.any(Number) });
      expect(record.CreationTime).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$/);
      expect(new Date(`${record.CreationTime}Z`).getTime()).toBeLessThan(new Date(answer.body[0].contentCreated).getTime());
    }
    const late = Array.from({ length: 300 }, (_, i) => emulator.corpus.blob('Audit.Exchange', i)).find((b) => b.visibleAt > fixedNow && b.contentCreated <= fixedNow);
    if (late) {
      const uri = `${emulator.apiRoot}/api/v1.0/${emulator.tenantId}/activity/feed/audit/${late.contentId}`;
      expect((await call(uri)).body.error.code).toBe('AF20052');
    }
    expect((await call('audit/not-a-content-id')).body.error.code).toBe('AF20052');
  });

  it('answers AF20010 when the tenant in the URL is not the tenant in the token', async () => {
    const answer = await call(`https://127.0.0.1:${emulator.port}/api/v1.0/00000000-0000-0000-0000-000000000009/activity/feed/subscriptions/list`);
    expect(answer.body.error.code).toBe('AF20010');
  });

  it('answers AF10001 for DLP.All when the token lacks ActivityFeed.ReadDlp', async () => {
    emulator.setGrantedRoles(['ActivityFeed.Read']);
    try {
      const reduced = await new MsalTokenProvider({ tenantId: emulator.tenantId, clientId: emulator.clientId, credential: { kind: 'secret', secret: emulator.rotateSecret() }, authorityHost: emulator.authorityHost, apiRoot: emulator.apiRoot, dispatcher: agent }).getToken();
      expect((await call('subscriptions/start?contentType=DLP.All', { method: 'POST', token: reduced })).body.error.code).toBe('AF10001');
    } finally {
      emulator.setGrantedRoles(['ActivityFeed.Read', 'ActivityFeed.ReadDlp', 'ServiceHealth.Read']);
    }
  });

  it('answers a tenant without audit logging with the misleading DataServiceException', async () => {
    emulator.setAuditingEnabled(false);
    try {
      const answer = await call('subscriptions/start?contentType=Audit.General', { method: 'POST' });
      expect(answer.status).toBe(400);
      expect(answer.body.error.code).toMatch(/^StartSubscription \[CorrId=/);
      expect(answer.body.error.message).toContain(`DataServiceException: Tenant ${emulator.tenantId} does not exist.`);
    } finally {
      emulator.setAuditingEnabled(true);
    }
  });
});

describe('faults and quota', () => {
  it('throttles beyond the per-publisher quota with AF429, and callers without PublisherIdentifier share a smaller bucket', async () => {
    const small = await startEmulator({ pki, seed: 3, now: () => fixedNow, quotaPerMinute: 20, enabledContentTypes: ['Audit.General'] });
    const smallToken = await new MsalTokenProvider({ tenantId: small.tenantId, clientId: small.clientId, credential: { kind: 'secret', secret: small.clientSecret }, authorityHost: small.authorityHost, apiRoot: small.apiRoot, dispatcher: agent }).getToken();
    const hit = async (publisher: string | null) => {
      const url = new URL(`${small.apiRoot}/api/v1.0/${small.tenantId}/activity/feed/subscriptions/list`);
      if (publisher) url.searchParams.set('PublisherIdentifier', publisher);
      const response = await request(url, { dispatcher: agent, headers: { authorization: `Bearer ${smallToken}` } });
      const body = await response.body.json() as { error?: { code: string } };
      return { status: response.statusCode, code: body.error?.code, retryAfter: response.headers['retry-after'] };
    };
    try {
      const anonymous = [];
      for (let i = 0; i < 3; i += 1) anonymous.push(await hit(null));
      expect(anonymous.map((a) => a.status)).toEqual([200, 200, 429]);
      const named = [];
      for (let i = 0; i < 21; i += 1) named.push(await hit(small.tenantId));
      expect(named.filter((a) => a.status === 200)).toHaveLength(20);
      expect(named.at(-1)).toMatchObject({ status: 429, code: 'AF429', retryAfter: undefined });
      small.advance(60_000);
      expect((await hit(small.tenantId)).status).toBe(200);
      expect(small.counters().throttled).toBe(2);
    } finally {
      await small.stop();
    }
  });

  it('applies scheduled faults: AF429 as HTTP 403 with Retry-After, 500 AF50000, and a connection dropped mid-body', async () => {
    emulator.resetCounters();
    emulator.setFaults({ throttleStatus: 403, retryAfterSeconds: 2, schedule: [{ from: 1, to: 1, fault: 'throttle' }, { from: 2, to: 2, fault: 'server-error' }, { from: 4, to: 4, fault: 'drop' }] });
    try {
      const listing = `subscriptions/content?contentType=Audit.Exchange&startTime=${iso(new Date(fixedNow.getTime() - 3_600_000))}&endTime=${iso(fixedNow)}`;
      const throttled = await call(listing);
      expect(throttled).toMatchObject({ status: 403, body: { error: { code: 'AF429' } } });
      expect(throttled.headers['retry-after']).toBe('2');
      expect(await call(listing)).toMatchObject({ status: 500, body: { error: { code: 'AF50000' } } });
      const page = await call(listing);
      await expect(call(page.body[0].contentUri)).rejects.toThrow();
      expect(emulator.counters()).toMatchObject({ throttled: 1, serverErrors: 1, dropped: 1 });
    } finally {
      emulator.setFaults({});
    }
  });
});

describe('determinism and ground truth', () => {
  it('serves the same corpus for the same seed and a different one for another seed', async () => {
    const a = await startEmulator({ pki, seed: 11, now: () => fixedNow, days: 1 });
    const b = await startEmulator({ pki, seed: 11, now: () => fixedNow, days: 1 });
    const c = await startEmulator({ pki, seed: 12, now: () => fixedNow, days: 1 });
    try {
      expect([...a.groundTruth('Audit.SharePoint')]).toEqual([...b.groundTruth('Audit.SharePoint')]);
      expect([...a.groundTruth('Audit.SharePoint')]).not.toEqual([...c.groundTruth('Audit.SharePoint')]);
      expect(a.tenantId).toBe(b.tenantId);
    } finally {
      await Promise.all([a.stop(), b.stop(), c.stop()]);
    }
  });

  it('knows the ground truth: a full crawl returns exactly its distinct ids, with duplicates across blobs', async () => {
    const records: string[] = [];
    for (let back = 2; back >= 1; back -= 1) {
      const start = new Date(fixedNow.getTime() - back * 24 * 3_600_000);
      const end = new Date(start.getTime() + 24 * 3_600_000);
      let next: string | undefined = `subscriptions/content?contentType=Audit.Exchange&startTime=${iso(start)}&endTime=${iso(end)}`;
      while (next) {
        const page = await call(next);
        for (const entry of page.body) records.push(...(await call(entry.contentUri)).body.map((r: { Id: string }) => r.Id));
        next = page.headers['nextpageuri'] as string | undefined;
      }
    }
    const truth = emulator.groundTruth('Audit.Exchange');
    expect(new Set(records)).toEqual(truth);
    expect(records.length).toBeGreaterThan(truth.size);
  });
});
