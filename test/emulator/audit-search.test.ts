import { describe, expect, it } from 'vitest';
import { request } from 'undici';
import { contentTypes, type ContentType } from '../../contract/content-types.ts';
import { connectorOutputs } from './connector-config.ts';
import { type Emulator, type EmulatorOptions, type EmulatorTenant } from './index.ts';
import { msalToken } from './support.ts';
import { standInsOfThisFile } from './stand-ins.ts';

const hour = 3_600_000;
const day = 24 * hour;
const fixedNow = new Date('2026-11-20T12:00:00Z');
/** A day the Management Activity API no longer lists: 10 to 9 days before now. */
const oldDay = { start: new Date(fixedNow.getTime() - 10 * day), end: new Date(fixedNow.getTime() - 9 * day) };
const marker = '"@odata.type":"#microsoft.graph.security.auditData",';
const standIns = standInsOfThisFile();

/** 25 days of history (blobs every 6 hours, 4 records each, a third of them repeating a record of an earlier blob). */
async function emulatorWith(options: EmulatorOptions = {}): Promise<Emulator> {
  const emulator = await standIns.start({ now: () => fixedNow, seed: 26, days: 25, blobIntervalMinutes: 360, recordsPerBlob: 4, duplicateRate: 0.34, duplicateMaxAgeMinutes: 1440,
    enabledContentTypes: [...contentTypes], ...options,
  });
  return emulator;
}

interface GraphAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  // Tests read whatever the service answered.
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  bytes: Buffer;
}

function graphClient(tenant: EmulatorTenant) {
  let token: Promise<string> | undefined;
  const call = async (pathOrUrl: string, options: { method?: 'GET' | 'POST'; body?: unknown } = {}): Promise<GraphAnswer> => {
    token ??= msalToken(tenant, standIns.agent, {}, `${tenant.graphRoot}/.default`);
    const url = pathOrUrl.startsWith('https://') ? pathOrUrl : `${tenant.graphRoot}/v1.0/security/auditLog/${pathOrUrl}`;
    const response = await request(url, {
      method: options.method ?? 'GET', dispatcher: standIns.agent,
      headers: { authorization: `Bearer ${await token}`, 'content-type': 'application/json' },
      ...(options.body !== undefined ? { body: typeof options.body === 'string' ? options.body : JSON.stringify(options.body) } : {}),
    });
    const bytes = Buffer.from(await response.body.arrayBuffer());
    return { status: response.statusCode, headers: response.headers, body: bytes.length ? JSON.parse(bytes.toString('utf8')) : undefined, bytes };
  };
  const create = (window: { start: Date; end: Date }, filters: Record<string, unknown> = {}) => call('queries', {
    method: 'POST',
    body: { displayName: `o365-connector test ${window.start.toISOString()}`, filterStartDateTime: window.start.toISOString(), filterEndDateTime: window.end.toISOString(), ...filters },
  });
  /** Creates a query and polls it until it is done; its last answer. */
  const run = async (window: { start: Date; end: Date }, filters: Record<string, unknown> = {}): Promise<GraphAnswer> => {
    const created = await create(window, filters);
    expect(created.status).toBe(201);
    for (;;) {
      const polled = await call(`queries/${created.body.id}`);
      expect(polled.status).toBe(200);
      if (polled.body.status !== 'notStarted' && polled.body.status !== 'running') return polled;
    }
  };
  return { call, create, run, reset: () => { token = undefined; } };
}

/** The end of the JSON value that starts at `start` (an object), strings and escapes understood. */
function endOfObject(text: Buffer, start: number): number {
  let depth = 0;
  let inString = false;
  for (let at = start; at < text.length; at += 1) {
    const byte = text[at]!;
    if (inString) {
      if (byte === 0x5c) at += 1;
      else if (byte === 0x22) inString = false;
    } else if (byte === 0x22) inString = true;
    else if (byte === 0x7b) depth += 1;
    else if (byte === 0x7d && (depth -= 1) === 0) return at + 1;
  }
  throw new Error('unterminated object');
}

/** Each record's auditData as the connector delivers it: the page's bytes, the @odata.type member cut out by slicing. */
function auditDataBytes(page: Buffer): Buffer[] {
  const found: Buffer[] = [];
  const start = Buffer.from(`"auditData":{${marker}`);
  for (let at = page.indexOf(start); at >= 0; at = page.indexOf(start, at + 1)) {
    const open = at + '"auditData":'.length;
    const end = endOfObject(page, open);
    found.push(Buffer.concat([page.subarray(open, open + 1), page.subarray(open + 1 + marker.length, end)]));
  }
  return found;
}

/** Every page of a succeeded query, following @odata.nextLink verbatim. */
interface PagedRecord { id: string; bytes: Buffer; service: string; auditLogRecordType: string }

async function allPages(client: ReturnType<typeof graphClient>, id: string): Promise<{ pages: GraphAnswer[]; records: PagedRecord[] }> {
  const pages: GraphAnswer[] = [];
  const records: PagedRecord[] = [];
  let next: string | undefined = `queries/${id}/records`;
  while (next) {
    const page = await client.call(next);
    expect(page.status).toBe(200);
    pages.push(page);
    const data = auditDataBytes(page.bytes);
    expect(data).toHaveLength(page.body.value.length);
    page.body.value.forEach((record: { id: string; service: string; auditLogRecordType: string }, n: number) => records.push({ ...record, bytes: data[n]! }));
    next = page.body['@odata.nextLink'];
  }
  return { pages, records };
}

/** The search's ground truth the slow way: every blob of the corpus, every record, by Id, CreationTime in [start, end). */
function bruteForce(tenant: EmulatorTenant, type: ContentType, window: { start: Date; end: Date }): Map<string, Buffer> {
  const truth = new Map<string, Buffer>();
  const now = tenant.now();
  const blobs = tenant.corpus.blobsCreatedIn(type, new Date(tenant.corpus.options.origin.getTime() - day), new Date(now.getTime() + 1));
  for (const { id, creationTime, text } of tenant.corpus.recordTextsIn(blobs)) {
    const at = Date.parse(`${creationTime}Z`);
    if (at >= window.start.getTime() && at < window.end.getTime() && !truth.has(id)) truth.set(id, Buffer.from(text, 'utf8'));
  }
  return truth;
}

function union(...maps: Array<Map<string, Buffer>>): Map<string, Buffer> {
  return new Map(maps.flatMap((map) => [...map]));
}

describe('the audit search (Microsoft Graph audit log queries)', () => {
  it('moves a query from notStarted through running to succeeded as it is polled, on v1.0 and beta, and counts it', async () => {
    const emulator = await emulatorWith();
    const client = graphClient(emulator);
    const created = await client.create(oldDay, { serviceFilters: ['Exchange'] });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      displayName: `o365-connector test ${oldDay.start.toISOString()}`, filterStartDateTime: '2026-11-10T12:00:00Z', filterEndDateTime: '2026-11-11T12:00:00Z',
      serviceFilters: ['Exchange'], recordTypeFilters: [], status: 'notStarted', recordCountLimit: 50_000, isRecordCountLimitEnabled: true, approximateReturnedRecordCount: null,
    });
    const id: string = created.body.id;
    expect((await client.call(`queries/${id}`)).body.status).toBe('running');
    const done = await client.call(`queries/${id}`);
    const expected = union(emulator.auditSearch.truth('Audit.Exchange', oldDay), emulator.auditSearch.truth('DLP.All', oldDay));
    expect(done.body).toMatchObject({ id, status: 'succeeded', approximateReturnedRecordCount: expected.size });
    expect(expected.size).toBeGreaterThan(0);
    const beta = await client.call(`${emulator.graphRoot}/beta/security/auditLog/queries/${id}`);
    expect(beta.body).toMatchObject({ id, status: 'succeeded', approximateReturnedRecordCount: expected.size });
    expect(emulator.counters().auditSearch).toEqual({ queriesCreated: 1, polls: 3, pages: 0, records: 0, throttled: 0 });

    emulator.auditSearch.configure({ pollsUntilDone: 4 });
    const slow = await client.create(oldDay);
    const statuses = [];
    for (let poll = 0; poll < 4; poll += 1) statuses.push((await client.call(`queries/${slow.body.id}`)).body.status);
    expect(statuses).toEqual(['running', 'running', 'running', 'succeeded']);
    const unpolled = await client.create(oldDay);
    emulator.advance(emulator.auditSearch.settings.finishAfterMs);
    const list = await client.call('queries');
    expect(list.body.value.find((query: { id: string }) => query.id === unpolled.body.id).status).toBe('succeeded');
  });

  it('pages every record of a window once, each auditData the record exactly as the Management Activity API carries it, older than 7 days and absent from the content listing', async () => {
    const emulator = await emulatorWith({ auditSearch: { pageSize: 7 } });
    const client = graphClient(emulator);
    const done = await client.run(oldDay);
    const { pages, records } = await allPages(client, done.body.id);
    const truth = union(...contentTypes.map((type) => emulator.auditSearch.truth(type, oldDay)));
    for (const type of contentTypes) expect(emulator.auditSearch.truth(type, oldDay)).toEqual(bruteForce(emulator, type, oldDay));
    const everything = { start: new Date(fixedNow.getTime() - 180 * day), end: fixedNow };
    expect(emulator.auditSearch.truth('Audit.General')).toEqual(bruteForce(emulator, 'Audit.General', everything));
    expect(pages.length).toBe(Math.ceil(truth.size / 7));
    expect(records.map((record) => record.id).sort()).toEqual([...truth.keys()].sort());
    for (const record of records) expect(record.bytes.equals(truth.get(record.id)!)).toBe(true);
    expect(pages[0]!.body['@odata.context']).toBe(`${emulator.graphRoot}/v1.0/$metadata#security/auditLog/queries('${done.body.id}')/records`);
    expect(new URL(pages[0]!.body['@odata.nextLink']).searchParams.get('$skiptoken')).toMatch(/^[A-Za-z0-9_-]+$/);
    // A nextLink followed again (a client restarted mid-query) gives the same bytes.
    const again = await client.call(pages[0]!.body['@odata.nextLink']);
    expect(again.bytes.equals(pages[1]!.bytes)).toBe(true);
    expect(emulator.counters().auditSearch).toMatchObject({ pages: pages.length + 1, records: truth.size + pages[1]!.body.value.length });

    // The window's records are 9 to 10 days old: only the search holds them, and the tricky encodings came through.
    const listed = emulator.groundTruth();
    expect(records.some((record) => listed.has(record.id))).toBe(false);
    expect(records.some((record) => /\\u00|\\\/|\u2028/.test(record.bytes.toString('utf8')))).toBe(true);
    const first = pages[0]!.body.value[0];
    const source = JSON.parse(truth.get(first.id)!.toString('utf8'));
    expect(first).toMatchObject({
      '@odata.type': '#microsoft.graph.security.auditLogRecord', id: source.Id, createdDateTime: `${source.CreationTime}Z`, operation: source.Operation,
      organizationId: emulator.tenantId, userId: source.UserId, userPrincipalName: source.UserId, service: source.Workload, administrativeUnits: [],
    });
    // A repeated record is one record: the blobs of the window repeat some, the search returns each once.
    const blobs = contentTypes.flatMap((type) => emulator.corpus.blobsCreatedIn(type, oldDay.start, new Date(oldDay.end.getTime() + 12 * hour)));
    const carried = [...emulator.corpus.recordIds(blobs)];
    expect(new Set(carried).size).toBeLessThan(carried.length);
  });

  it('holds what only the search holds and what is listed: a query over the last day overlaps the content listing', async () => {
    const emulator = await emulatorWith();
    const client = graphClient(emulator);
    const added = emulator.addContent('Audit.SharePoint', { count: 3, contentCreated: new Date(fixedNow.getTime() - 11 * day), visibleAt: new Date(fixedNow.getTime() - 11 * day) });
    const lastDay = { start: new Date(fixedNow.getTime() - day), end: fixedNow };
    const recent = await allPages(client, (await client.run(lastDay)).body.id);
    const listed = emulator.groundTruth();
    expect(recent.records.length).toBeGreaterThan(0);
    expect(recent.records.filter((record) => listed.has(record.id)).length).toBeGreaterThan(0);
    const elevenDays = { start: new Date(fixedNow.getTime() - 12 * day), end: new Date(fixedNow.getTime() - 10 * day) };
    const old = await allPages(client, (await client.run(elevenDays, { serviceFilters: ['SharePoint', 'OneDrive'] })).body.id);
    const addedIds = emulator.corpus.recordTexts(added).map((record) => record.id);
    expect(old.records.map((record) => record.id)).toEqual(expect.arrayContaining(addedIds));
    expect(old.records.map((record) => record.id).sort()).toEqual([...emulator.auditSearch.truth('Audit.SharePoint', elevenDays).keys()].sort());
  });

  it("filters by service (the record's Workload) and by record type (its auditLogRecordType), as the connector asks per content type", async () => {
    const emulator = await emulatorWith();
    const client = graphClient(emulator);
    const truth = (type: ContentType) => [...emulator.auditSearch.truth(type, oldDay).keys()];
    const ask = async (filters: Record<string, unknown>) => (await allPages(client, (await client.run(oldDay, filters)).body.id)).records;
    const aad = await ask({ serviceFilters: ['AzureActiveDirectory'] });
    expect(aad.map((record) => record.id).sort()).toEqual(truth('Audit.AzureActiveDirectory').sort());
    expect(new Set(aad.map((record) => record.auditLogRecordType))).toEqual(new Set(['azureActiveDirectoryStsLogon']));
    const sharePoint = await ask({ serviceFilters: ['SharePoint', 'OneDrive'] });
    expect(sharePoint.map((record) => record.id).sort()).toEqual(truth('Audit.SharePoint').sort());
    // Exchange's DLP records carry Workload Exchange: a service filter returns them too, as Graph does.
    const exchange = await ask({ serviceFilters: ['Exchange'] });
    expect(exchange.map((record) => record.id).sort()).toEqual([...truth('Audit.Exchange'), ...truth('DLP.All')].sort());
    const dlp = await ask({ recordTypeFilters: ['complianceDLPSharePoint', 'complianceDLPExchange', 'complianceDLPSharePointClassification', 'complianceDLPExchangeClassification'] });
    expect(dlp.map((record) => record.id).sort()).toEqual(truth('DLP.All').sort());
    expect(new Set(dlp.map((record) => record.service))).toEqual(new Set(['Exchange']));
    const all = await ask({});
    expect(all.map((record) => record.id).sort()).toEqual(contentTypes.flatMap(truth).sort());
    expect(new Set(all.map((record) => record.auditLogRecordType))).toEqual(new Set(['azureActiveDirectoryStsLogon', 'exchangeItem', 'exchangeAdmin', 'sharePointFileOperation', 'microsoftTeams', 'complianceDLPExchange']));
    expect(truth('Audit.General').length).toBeGreaterThan(0);
  });

  it('returns at most the record limit of a query, and approximateReturnedRecordCount says so', async () => {
    const emulator = await emulatorWith({ auditSearch: { recordCountLimit: 10, pageSize: 4 } });
    const client = graphClient(emulator);
    const full = await client.run(oldDay);
    expect(full.body).toMatchObject({ status: 'succeeded', recordCountLimit: 10, isRecordCountLimitEnabled: true, approximateReturnedRecordCount: 10 });
    const { records } = await allPages(client, full.body.id);
    expect(records).toHaveLength(10);
    const truth = union(...contentTypes.map((type) => emulator.auditSearch.truth(type, oldDay)));
    expect(truth.size).toBeGreaterThan(10);
    for (const record of records) expect(record.bytes.equals(truth.get(record.id)!)).toBe(true);
    const hour = { start: oldDay.start, end: new Date(oldDay.start.getTime() + 3_600_000) };
    const small = union(...contentTypes.map((type) => emulator.auditSearch.truth(type, hour)));
    expect(small.size).toBeLessThan(10);
    expect((await client.run(hour)).body.approximateReturnedRecordCount).toBe(small.size);
  });

  it('answers 429 with Retry-After on demand and beyond the concurrent queries a tenant may run', async () => {
    const emulator = await emulatorWith({ auditSearch: { maxUnfinishedQueries: 2 } });
    const client = graphClient(emulator);
    emulator.auditSearch.throttleNext(2, 7);
    const throttled = [await client.create(oldDay), await client.call('queries')];
    for (const answer of throttled) {
      expect(answer.status).toBe(429);
      expect(answer.headers['retry-after']).toBe('7');
      expect(answer.body.error.code).toBe('TooManyRequests');
    }
    const first = await client.create(oldDay);
    const second = await client.create(oldDay);
    expect([first.status, second.status]).toEqual([201, 201]);
    const third = await client.create(oldDay);
    expect(third.status).toBe(429);
    expect(third.headers['retry-after']).toBe('1');
    await client.call(`queries/${first.body.id}`);
    await client.call(`queries/${first.body.id}`);
    expect((await client.create(oldDay)).status).toBe(201);
    expect(emulator.counters().auditSearch).toMatchObject({ queriesCreated: 3, throttled: 3 });
  });

  it('ends the next queries failed on demand, and their records are refused', async () => {
    const emulator = await emulatorWith();
    const client = graphClient(emulator);
    emulator.auditSearch.failNext(1);
    const failed = await client.run(oldDay);
    expect(failed.body.status).toBe('failed');
    const refused = await client.call(`queries/${failed.body.id}/records`);
    expect(refused.status).toBe(400);
    expect(refused.body.error.code).toBe('BadRequest');
    expect((await client.run(oldDay)).body.status).toBe('succeeded');
  });

  it('answers 403 to a token without AuditLogsQuery.Read.All, and the outputs say whether the tenant grants it', async () => {
    const emulator = await emulatorWith();
    expect(emulator.graphRoles()).toContain('AuditLogsQuery.Read.All');
    expect(connectorOutputs(emulator).auditSearch).toBe(true);
    emulator.setGraphRoles(['ServiceHealth.Read.All', 'ServiceMessage.Read.All']);
    const client = graphClient(emulator);
    const refused = await client.create(oldDay);
    expect(refused.status).toBe(403);
    expect(refused.body.error).toMatchObject({ code: 'Forbidden', message: expect.stringContaining("API requires one of 'AuditLogsQuery.Read.All'") });
    expect(connectorOutputs(emulator).auditSearch).toBeUndefined();
    expect(emulator.stackOutputs()).not.toHaveProperty('auditSearch');
  });

  it('answers 404 for an unknown query, 400 for records not ready, a bad body or skiptoken, and keeps tenants apart', async () => {
    const emulator = await emulatorWith();
    const client = graphClient(emulator);
    const unknown = await client.call('queries/0b0e5d2c-5a3b-4c1d-9e8f-7a6b5c4d3e2f');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('NotFound');
    const created = await client.create(oldDay);
    const early = await client.call(`queries/${created.body.id}/records`);
    expect(early.status).toBe(400);
    expect(early.body.error.message).toContain("has status 'notStarted'");
    expect((await client.create(oldDay, { recordTypeFilters: ['noSuchRecordType'] })).status).toBe(400);
    expect((await client.call('queries', { method: 'POST', body: { filterStartDateTime: '2026-11-10' } })).status).toBe(400);
    expect((await client.create({ start: oldDay.end, end: oldDay.start })).status).toBe(400);
    expect((await client.call('queries', { method: 'POST', body: 'not json' })).status).toBe(400);
    await client.call(`queries/${created.body.id}`);
    await client.call(`queries/${created.body.id}`);
    expect((await client.call(`queries/${created.body.id}/records?$skiptoken=forged`)).status).toBe(400);
    const other = emulator.addTenant();
    const otherClient = graphClient(other);
    expect((await otherClient.call(`queries/${created.body.id}`)).status).toBe(404);
    const otherDone = await otherClient.run(oldDay);
    const otherIds = (await allPages(otherClient, otherDone.body.id)).records.map((record) => record.id).sort();
    expect(otherIds).toEqual(contentTypes.flatMap((type) => [...other.auditSearch.truth(type, oldDay).keys()]).sort());
    expect(other.counters().auditSearch.queriesCreated).toBe(1);
  });

  it('reaches back only as far as its retention', async () => {
    const emulator = await emulatorWith({ auditSearch: { retentionDays: 20 } });
    const client = graphClient(emulator);
    const beyond = { start: new Date(fixedNow.getTime() - 24 * day), end: new Date(fixedNow.getTime() - 21 * day) };
    expect((await client.run(beyond)).body.approximateReturnedRecordCount).toBe(0);
    expect(emulator.auditSearch.truth(undefined, beyond).size).toBe(0);
    emulator.auditSearch.configure({ retentionDays: 180 });
    expect(emulator.auditSearch.truth(undefined, beyond).size).toBeGreaterThan(0);
    expect((await client.run(beyond)).body.approximateReturnedRecordCount).toBe(emulator.auditSearch.truth(undefined, beyond).size);
  });
});
