/**
 * What every state store promises, whatever keeps it (SQLite in a state directory, PostgreSQL for a fleet): one
 * suite, registered by each store's test file with a way to make a new, empty place for state and to open it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { ContentType } from '../../../contract/content-types.ts';
import { type StateDatabase, type StateStore } from '../../../connector/state/store.ts';
import { expiredKept, type Commit, type RecordKey, type UnitKey } from '../../../connector/core/commit.ts';

export interface DeadLetter {
  readonly contentType: ContentType;
  readonly contentId: string;
  readonly index: number;
  readonly reason: string;
  readonly at: string;
  readonly bytes: Buffer;
}

/** Where one store keeps state: a state directory, a database. Opened again, it holds what was committed. */
export interface StatePlace {
  open(): Promise<StateDatabase>;
  /** The records set aside for `tenant`, in the order they were. */
  deadLetters(tenant: string): Promise<DeadLetter[]>;
}

export interface StoreHarness {
  /** A new, empty place for state. */
  place(): Promise<StatePlace>;
}

/** The tenant of most tests, and another one. */
export const contoso = '4a1f7c0e-2b6d-4e8a-9c3f-0d5e6b7a8c91';
export const fabrikam = 'c3d2e1f0-9a8b-4c7d-8e6f-5a4b3c2d1e0f';

/** A CreationTime as the API writes it: UTC without a zone, whole seconds. */
export const apiTime = (ms: number) => new Date(ms).toISOString().slice(0, 19);
export const key = (id: string, creationTime: string | undefined): RecordKey => ({ id, creationTime });
/** `n` records as a blob holds them: Ids `<prefix>-000000`, ... with CreationTimes 7 s apart from `from` on. */
export const keys = (prefix: string, n: number, from = Date.UTC(2026, 10, 25, 8, 50)): RecordKey[] =>
  Array.from({ length: n }, (_, i) => key(`${prefix}-${String(i).padStart(6, '0')}`, apiTime(from + i * 7_000)));

/** A delivered batch of Audit.Exchange as the pipeline commits it. */
export function batch(overrides: Partial<Commit> = {}): Commit {
  return {
    contentType: 'Audit.Exchange',
    at: '2026-11-25T10:00:00.000Z',
    checkpoint: '2026-11-25T09:00:00.000Z',
    blobs: [
      { contentId: '20261125085500123$20261125085500123$audit_exchange$Audit_Exchange$emea0001', contentCreated: '2026-11-25T08:55:00.123Z' },
      { contentId: '20261125085800456$20261125085800456$audit_exchange$Audit_Exchange$emea0001', contentCreated: '2026-11-25T08:58:00.456Z' },
    ],
    recordKeys: keys('rec', 40),
    records: 40,
    duplicates: 2,
    sinkPositions: { 'file:/var/log/o365.ndjson': 40_960 },
    ...overrides,
  };
}

/** Takes the unit unless another worker holds it; true when `database`'s worker holds it now. */
export async function claim(database: StateDatabase, unit: UnitKey): Promise<boolean> {
  return (await database.claims.tryClaimSome([unit], 1)).length === 1;
}

/**
 * A tenant's view that claims each unit before committing it, as the fleet coordinator does (a fleet store
 * refuses commits of units it does not hold); closing it closes the database.
 */
export function claimedView(database: StateDatabase, tenant: string): StateStore {
  const view = database.tenant(tenant);
  return {
    location: view.location,
    deadLetters: view.deadLetters,
    cursors: () => view.cursors(),
    sinkPositions: () => view.sinkPositions(),
    deliveredBlobs: (contentType, ids) => view.deliveredBlobs(contentType, ids),
    seenRecords: (contentType, recordKeys) => view.seenRecords(contentType, recordKeys),
    async commit(commit) {
      if (commit.contentType !== undefined && !await claim(database, { tenant, contentType: commit.contentType })) throw new Error(`${tenant}/${commit.contentType} is held by another worker`);
      await view.commit(commit);
    },
    close: () => database.close(),
  };
}

type OpenedStore = StateStore & { readonly place: StatePlace; readonly database: StateDatabase };

/** Registers the contract's tests for one store. */
export function describeStoreContract(name: string, harness: () => StoreHarness, skipReason?: string): void {
  describe.skipIf(skipReason !== undefined)(`${name}: the state store contract${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
    const opened: StateDatabase[] = [];
    /** The view of `tenant` (contoso) in a new place, or in `place` opened again. */
    async function open(place?: StatePlace, tenant = contoso): Promise<OpenedStore> {
      const at = place ?? await harness().place();
      const database = await at.open();
      opened.push(database);
      return Object.assign(claimedView(database, tenant), { place: at, database });
    }
    afterEach(async () => {
      for (const database of opened.splice(0)) await database.close();
    });

    it('starts from nothing: no tenant, no cursor, no sink position (and reopens the same)', async () => {
      const store = await open();
      expect(await store.database.tenants()).toEqual([]);
      expect(await store.cursors()).toEqual(new Map());
      expect(await store.sinkPositions()).toEqual({});
      expect(await store.seenRecords('Audit.General', [key('a', '2026-11-25T09:00:00')])).toEqual(new Set());
      expect(await store.deliveredBlobs('Audit.General', ['a'])).toEqual(new Set());
      await store.close();
      const reopened = await open(store.place);
      expect(await reopened.cursors()).toEqual(new Map());
    });

    it('keeps where coverage began (the first one given), counts blobs found late with the largest lateness, and the last sweep', async () => {
      const store = await open();
      await store.commit({ contentType: 'Audit.General', at: '2026-11-25T10:00:00.000Z', coveredFrom: '2026-11-20T00:00:00.000Z' });
      await store.commit({ contentType: 'Audit.General', at: '2026-11-25T11:00:00.000Z', coveredFrom: '2026-11-25T06:00:00.000Z', late: [{ contentId: 'a', latenessMs: 3_600_000 }, { contentId: 'b', latenessMs: 5 * 86_400_000 }] });
      await store.commit({ contentType: 'Audit.General', at: '2026-11-25T12:00:00.000Z', late: [{ contentId: 'c', latenessMs: 60_000 }], sweptAt: '2026-11-25T12:00:00.000Z' });
      expect((await store.cursors()).get('Audit.General')).toMatchObject({
        coveredFrom: '2026-11-20T00:00:00.000Z', lateBlobs: 3, maxLatenessMs: 5 * 86_400_000, lastSweepAt: '2026-11-25T12:00:00.000Z',
      });
      await store.close();
    });

    it('keeps the ServiceHealth unit\'s last overview sample and its versions\' keys (<id>@<lastModifiedDateTime>), across a reopen', async () => {
      const store = await open();
      const first = { at: '2026-11-25T10:00:00.000Z', services: [{ service: 'Exchange Online', status: 'serviceDegradation' }, { service: 'Microsoft Teams', status: 'serviceOperational' }] };
      const versions = [key('EX226792@2026-11-25T09:20:24.767Z', '2026-11-25T09:20:24.767Z'), key('EX226792@2026-11-25T09:40:00.000Z', '2026-11-25T09:40:00.000Z')];
      await store.commit({ contentType: 'ServiceHealth', at: '2026-11-25T10:00:00.000Z', checkpoint: '2026-11-25T09:59:00.000Z', records: 2, recordKeys: versions, serviceHealth: first });
      // A commit without a sample leaves the stored one alone; the next sample replaces it.
      await store.commit({ contentType: 'ServiceHealth', at: '2026-11-25T10:01:00.000Z', lastError: null });
      expect((await store.cursors()).get('ServiceHealth')).toMatchObject({ checkpoint: '2026-11-25T09:59:00.000Z', recordsDelivered: 2, serviceHealth: first });
      expect(await store.seenRecords('ServiceHealth', [...versions, key('EX226792@2026-11-25T10:30:00.000Z', '2026-11-25T10:30:00.000Z')])).toEqual(new Set(versions.map((version) => version.id)));
      // Kept apart from the audit content types' keys.
      expect(await store.seenRecords('Audit.General', versions)).toEqual(new Set());
      const second = { at: '2026-11-25T10:02:00.000Z', services: [{ service: 'Exchange Online', status: 'serviceRestored' }] };
      await store.commit({ contentType: 'ServiceHealth', at: '2026-11-25T10:02:00.000Z', serviceHealth: second });
      await store.close();
      const reopened = await open(store.place);
      expect((await reopened.cursors()).get('ServiceHealth')?.serviceHealth).toEqual(second);
      expect((await reopened.cursors()).get('Audit.General')?.serviceHealth).toBeUndefined();
    });

    it('adds up counters, moves the checkpoint and keeps a cursor per content type', async () => {
      const store = await open();
      await store.commit(batch());
      await store.commit(batch({
        at: '2026-11-25T10:05:00.000Z', checkpoint: '2026-11-25T09:05:00.000Z', records: 10, duplicates: 0, recordKeys: keys('later', 10, Date.UTC(2026, 10, 25, 9, 0)),
        blobs: [{ contentId: 'blob-c', contentCreated: '2026-11-25T09:01:00Z' }], heldBlobs: 1,
        lastError: { code: 'AF20055', message: 'fetch failed', at: '2026-11-25T10:04:00.000Z' },
      }));
      // A commit of sink positions alone, then one that only records a failed pass.
      await store.commit({ at: '2026-11-25T10:06:00.000Z', sinkPositions: { stdout: null } });
      await store.commit({ contentType: 'DLP.All', at: '2026-11-25T10:07:00.000Z', lastError: { code: 'AF10001', message: 'denied', at: '2026-11-25T10:07:00.000Z' } });
      const cursors = await store.cursors();
      expect(cursors.get('Audit.Exchange')).toEqual({
        contentType: 'Audit.Exchange', checkpoint: '2026-11-25T09:05:00.000Z', recordsDelivered: 50, blobsDelivered: 3, duplicatesDropped: 2,
        expiredCount: 0, expired: [], lastContentSeen: '2026-11-25T09:01:00Z', lastDeliveryAt: '2026-11-25T10:05:00.000Z',
        lastError: { code: 'AF20055', message: 'fetch failed', at: '2026-11-25T10:04:00.000Z' }, heldBlobs: 1, updatedAt: '2026-11-25T10:05:00.000Z',
        coveredFrom: undefined, lateBlobs: 0, maxLatenessMs: 0, lastSweepAt: undefined,
      });
      expect(cursors.get('DLP.All')).toMatchObject({ checkpoint: undefined, recordsDelivered: 0, lastDeliveryAt: undefined, lastError: { code: 'AF10001' } });
      // A clean pass clears the error; a commit without records leaves lastDeliveryAt alone; an older blob does not move lastContentSeen.
      await store.commit({ contentType: 'Audit.Exchange', at: '2026-11-25T10:10:00.000Z', lastError: null, heldBlobs: 0, blobs: [{ contentId: 'old', contentCreated: '2026-11-25T07:00:00.000Z' }] });
      expect((await store.cursors()).get('Audit.Exchange')).toMatchObject({
        lastError: undefined, heldBlobs: 0, lastDeliveryAt: '2026-11-25T10:05:00.000Z', updatedAt: '2026-11-25T10:10:00.000Z',
        lastContentSeen: '2026-11-25T09:01:00Z', blobsDelivered: 4, checkpoint: '2026-11-25T09:05:00.000Z',
      });
    });

    it('counts expired blobs without counting them delivered, and lists only the latest few, newest last', async () => {
      const store = await open();
      for (let n = 0; n < expiredKept + 7; n += 1) {
        const blob = { contentId: `expired-${n}`, contentCreated: new Date(Date.UTC(2026, 10, 18, 0, n)).toISOString() };
        await store.commit({ contentType: 'Audit.SharePoint', at: '2026-11-25T10:00:00.000Z', blobs: [blob], expired: [{ ...blob, detectedAt: `2026-11-25T10:00:00.000Z` }] });
      }
      const cursor = (await store.cursors()).get('Audit.SharePoint')!;
      expect(cursor.expiredCount).toBe(expiredKept + 7);
      expect(cursor.blobsDelivered).toBe(0);
      expect(cursor.lastContentSeen).toBeUndefined();
      expect(cursor.expired).toHaveLength(expiredKept);
      expect(cursor.expired[0]!.contentId).toBe('expired-7');
      expect(cursor.expired.at(-1)!.contentId).toBe(`expired-${expiredKept + 6}`);
      // Never fetched again either: an expired blob is remembered as done.
      expect(await store.deliveredBlobs('Audit.SharePoint', ['expired-0', 'expired-56', 'other'])).toEqual(new Set(['expired-0', 'expired-56']));
    });

    it('answers which blobs and records were delivered, per content type', async () => {
      const store = await open();
      await store.commit(batch());
      await store.commit({ contentType: 'Audit.General', at: '2026-11-25T10:00:00.000Z', blobs: [{ contentId: 'general-1', contentCreated: '2026-11-25T08:00:00Z' }], recordKeys: [key('shared-id', '2026-11-25T07:59:00')], records: 1 });
      const [first] = batch().blobs!;
      const exchange = keys('rec', 40);
      expect(await store.deliveredBlobs('Audit.Exchange', [first!.contentId, 'never', 'general-1'])).toEqual(new Set([first!.contentId]));
      expect(await store.deliveredBlobs('Audit.General', ['general-1'])).toEqual(new Set(['general-1']));
      expect(await store.seenRecords('Audit.Exchange', [exchange[0]!, exchange[39]!, keys('rec', 41)[40]!, key('shared-id', '2026-11-25T07:59:00')])).toEqual(new Set(['rec-000000', 'rec-000039']));
      expect(await store.seenRecords('Audit.General', [key('shared-id', '2026-11-25T07:59:00'), exchange[0]!])).toEqual(new Set(['shared-id']));
      expect(await store.seenRecords('Audit.Exchange', [])).toEqual(new Set());
      // Ids are data, not SQL or JSON syntax.
      const odd = [`it's "quoted"`, 'back\\slash', '日本語', "'); DROP TABLE record_ids; --", '', '[1,"x"]', '42'].map((id) => key(id, '2026-11-25T09:00:00'));
      await store.commit({ contentType: 'Audit.Exchange', at: '2026-11-25T10:01:00.000Z', recordKeys: odd });
      expect(await store.seenRecords('Audit.Exchange', [...odd, key('x', '2026-11-25T09:00:00')])).toEqual(new Set(odd.map((k) => k.id)));
    });

    it('knows a record by its Id and CreationTime: the same Id at another second is another record', async () => {
      const store = await open();
      await store.commit({ contentType: 'Audit.Exchange', at: '2026-11-25T10:00:00.000Z', recordKeys: [key('a', '2026-11-25T09:01:00'), key('b', '2026-11-25T09:01:00.4567890')], records: 2 });
      // The same second, however it is spelled, is the same record.
      for (const time of ['2026-11-25T09:01:00', '2026-11-25T09:01:00Z', '2026-11-25T09:01:00.000Z', '2026-11-25T09:01:00.4', '2026-11-25T09:01:00.9999999',
        '2026-11-25T10:01:00+01:00', '2026-11-25T04:01:00-05:00']) {
        expect(await store.seenRecords('Audit.Exchange', [key('a', time), key('b', time)]), time).toEqual(new Set(['a', 'b']));
      }
      // Another second (either side), another day, the local time of another zone, or no time: not delivered yet.
      for (const time of ['2026-11-25T09:01:01', '2026-11-25T09:00:59.999', '2026-11-26T09:01:00', '2026-11-25T09:01:00+01:00', undefined, 'not a time']) {
        expect(await store.seenRecords('Audit.Exchange', [key('a', time), key('b', time)]), String(time)).toEqual(new Set());
      }
      // Nor under another content type.
      expect(await store.seenRecords('Audit.General', [key('a', '2026-11-25T09:01:00')])).toEqual(new Set());
      // So the record at the other second is delivered and remembered beside the first; a key repeated within a
      // commit (in any spelling) is kept once.
      await store.commit({ contentType: 'Audit.Exchange', at: '2026-11-25T10:01:00.000Z', recordKeys: [key('a', '2026-11-25T09:01:01'), key('a', '2026-11-25T09:01:01Z'), key('a', '2026-11-25T09:01:01.5')], records: 1 });
      expect(await store.seenRecords('Audit.Exchange', [key('a', '2026-11-25T09:01:01.9Z')])).toEqual(new Set(['a']));
      expect(await store.seenRecords('Audit.Exchange', [key('a', '2026-11-25T09:01:00')])).toEqual(new Set(['a']));
      // Each is forgotten by its own CreationTime.
      await store.commit({ contentType: 'Audit.Exchange', at: '2026-11-25T10:02:00.000Z', forgetRecordsCreatedBefore: '2026-11-25T09:01:01.000Z' });
      expect(await store.seenRecords('Audit.Exchange', [key('a', '2026-11-25T09:01:00')])).toEqual(new Set());
      expect(await store.seenRecords('Audit.Exchange', [key('b', '2026-11-25T09:01:00')])).toEqual(new Set());
      expect(await store.seenRecords('Audit.Exchange', [key('a', '2026-11-25T09:01:01')])).toEqual(new Set(['a']));
    });

    it('keys a record without a readable CreationTime at second 0, and never forgets it (it has no time to age by)', async () => {
      const store = await open();
      await store.commit({ contentType: 'Audit.General', at: '2026-11-25T10:00:00.000Z', recordKeys: [key('no-time', undefined), key('bad-time', 'yesterday'), key('epoch', '1970-01-01T00:00:00')], records: 3 });
      // Any unreadable time (or none) finds them, a readable one does not.
      expect(await store.seenRecords('Audit.General', [key('no-time', 'garbage'), key('bad-time', undefined), key('epoch', '')])).toEqual(new Set(['no-time', 'bad-time', 'epoch']));
      expect(await store.seenRecords('Audit.General', [key('no-time', '2026-11-25T09:01:00')])).toEqual(new Set());
      await store.commit({ contentType: 'Audit.General', at: '2026-11-25T10:01:00.000Z', forgetRecordsCreatedBefore: '2026-11-18T09:00:00.000Z' });
      expect(await store.seenRecords('Audit.General', [key('no-time', undefined), key('bad-time', undefined), key('epoch', undefined)])).toEqual(new Set(['no-time', 'bad-time', 'epoch']));
    });

    it('keeps a unit\'s history (gaps asked, windows done, the query paged) and never forgets record keys inside the window being paged', async () => {
      const store = await open();
      const day = 86_400_000;
      const from = Date.UTC(2026, 10, 1);
      await store.commit({ contentType: 'Audit.Exchange', at: '2026-11-25T10:00:00.000Z', checkpoint: '2026-11-25T09:00:00.000Z', history: { gap: [from, from + 10 * day] } });
      const paging = { from, to: from + day, queryId: 'q-1', nextLink: 'https://graph.microsoft.com/v1.0/security/auditLog/queries/q-1/records?$skiptoken=2', records: 100 };
      const old = key('old-record', apiTime(from + 3_600_000));
      await store.commit({ contentType: 'Audit.Exchange', at: '2026-11-25T10:01:00.000Z', recordKeys: [old], records: 1, history: { paging, records: 1, queries: 1 } });
      // A live pass forgets records older than its retention: not those of the window being paged.
      await store.commit({ contentType: 'Audit.Exchange', at: '2026-11-25T10:02:00.000Z', forgetRecordsCreatedBefore: '2026-11-15T00:00:00.000Z' });
      expect(await store.seenRecords('Audit.Exchange', [old])).toEqual(new Set(['old-record']));
      await store.commit({ contentType: 'Audit.Exchange', at: '2026-11-25T10:03:00.000Z', history: { done: [[from, from + day]], paging: null, records: 4 } });
      // The same gap again (a live pass that failed and started over): what history has read is not asked again.
      await store.commit({ contentType: 'Audit.Exchange', at: '2026-11-25T10:04:00.000Z', history: { gap: [from, from + 10 * day] } });
      await store.close();
      const reopened = await open(store.place);
      const history = (await reopened.cursors()).get('Audit.Exchange')?.history;
      expect(history).toMatchObject({ asked: [[from, from + 10 * day]], todo: [[from + day, from + 10 * day]], records: 5, queries: 1, updatedAt: '2026-11-25T10:04:00.000Z' });
      expect(history?.paging).toBeUndefined();
      expect((await reopened.cursors()).get('Audit.Exchange')?.checkpoint).toBe('2026-11-25T09:00:00.000Z');
      // Without a query being paged, they go.
      await reopened.commit({ contentType: 'Audit.Exchange', at: '2026-11-25T10:05:00.000Z', forgetRecordsCreatedBefore: '2026-11-15T00:00:00.000Z' });
      expect(await reopened.seenRecords('Audit.Exchange', [old])).toEqual(new Set());
    });

    it('forgets delivered blobs by contentCreated and records by CreationTime, before the given instants, of that content type only', async () => {
      const store = await open();
      for (const [hour, contentType] of [[6, 'Audit.Exchange'], [8, 'Audit.Exchange'], [6, 'Audit.General']] as const) {
        const created = `2026-11-25T0${hour}:00:00`;
        await store.commit({ contentType, at: '2026-11-25T10:00:00.000Z', blobs: [{ contentId: `blob-${hour}`, contentCreated: `${created}Z` }], recordKeys: [key(`id-${hour}`, created)] });
      }
      await store.commit({ contentType: 'Audit.Exchange', at: '2026-11-25T10:00:00.000Z', recordKeys: [key('id-759', '2026-11-25T07:59:59.9')] });
      // The bounds are exclusive, and compare instants (07:59:59.9999999Z has more digits than 08:00:00Z).
      await store.commit({ contentType: 'Audit.Exchange', at: '2026-11-25T10:01:00.000Z', forgetBlobsBefore: '2026-11-25T07:59:59.9999999Z', forgetRecordsCreatedBefore: '2026-11-25T08:00:00.000Z' });
      expect(await store.deliveredBlobs('Audit.Exchange', ['blob-6', 'blob-8'])).toEqual(new Set(['blob-8']));
      expect(await store.seenRecords('Audit.Exchange', [key('id-6', '2026-11-25T06:00:00'), key('id-759', '2026-11-25T07:59:59'), key('id-8', '2026-11-25T08:00:00')])).toEqual(new Set(['id-8']));
      expect(await store.deliveredBlobs('Audit.General', ['blob-6'])).toEqual(new Set(['blob-6']));
      expect(await store.seenRecords('Audit.General', [key('id-6', '2026-11-25T06:00:00')])).toEqual(new Set(['id-6']));
      // Records are forgotten by whole seconds: one in the bound's own second stays (the safe side).
      await store.commit({ contentType: 'Audit.Exchange', at: '2026-11-25T10:02:00.000Z', forgetRecordsCreatedBefore: '2026-11-25T08:00:00.999Z' });
      expect(await store.seenRecords('Audit.Exchange', [key('id-8', '2026-11-25T08:00:00')])).toEqual(new Set(['id-8']));
      // By CreationTime, not by when or in which blob they came: a late record of an old time goes at once (this
      // commit's own entries included), a recent one stays however old its blob.
      await store.commit({
        contentType: 'Audit.General', at: '2026-11-25T10:03:00.000Z', blobs: [{ contentId: 'blob-old', contentCreated: '2026-11-20T00:00:00Z' }],
        recordKeys: [key('late', '2026-11-24T23:59:59'), key('recent', '2026-11-25T00:00:00')], forgetRecordsCreatedBefore: '2026-11-25T00:00:00.000Z',
      });
      expect(await store.seenRecords('Audit.General', [key('late', '2026-11-24T23:59:59'), key('recent', '2026-11-25T00:00:00'), key('id-6', '2026-11-25T06:00:00')])).toEqual(new Set(['recent', 'id-6']));
    });

    it('merges sink positions by name, and keeps everything across a reopen', async () => {
      const store = await open();
      await store.commit({ at: '2026-11-25T09:59:00.000Z', sinkPositions: { 'file:/var/log/o365.ndjson': 0, 'syslog+tls://siem:6514': null } });
      await store.commit(batch({ sinkPositions: { 'file:/var/log/o365.ndjson': { inode: 1234, offset: 40_960 } } }));
      expect(await store.sinkPositions()).toEqual({ 'file:/var/log/o365.ndjson': { inode: 1234, offset: 40_960 }, 'syslog+tls://siem:6514': null });
      const cursors = await store.cursors();
      await store.close();
      const reopened = await open(store.place);
      expect(await reopened.sinkPositions()).toEqual({ 'file:/var/log/o365.ndjson': { inode: 1234, offset: 40_960 }, 'syslog+tls://siem:6514': null });
      expect(await reopened.cursors()).toEqual(cursors);
      expect((await reopened.seenRecords('Audit.Exchange', keys('rec', 40))).size).toBe(40);
    });

    it('applies a commit whole or not at all: one that fails midway leaves the previous state', async () => {
      const store = await open();
      await store.commit(batch());
      const before = { cursors: await store.cursors(), positions: await store.sinkPositions() };
      // The cursor, blobs, records and positions are written before the bad instant is reached.
      const newKey = key('new-id', '2026-11-25T09:30:00');
      const failing = batch({ at: '2026-11-25T11:00:00.000Z', checkpoint: '2026-11-25T10:00:00.000Z', recordKeys: [newKey], blobs: [{ contentId: 'new-blob', contentCreated: '2026-11-25T09:30:00Z' }], sinkPositions: { 'file:/var/log/o365.ndjson': 99_999 }, forgetRecordsCreatedBefore: 'not a time' });
      await expect(store.commit(failing)).rejects.toThrow(/forgetRecordsCreatedBefore is not a timestamp/);
      expect(await store.cursors()).toEqual(before.cursors);
      expect(await store.sinkPositions()).toEqual(before.positions);
      expect(await store.seenRecords('Audit.Exchange', [newKey])).toEqual(new Set());
      expect(await store.deliveredBlobs('Audit.Exchange', ['new-blob'])).toEqual(new Set());
      // And the store goes on.
      await store.commit(batch({ at: '2026-11-25T11:00:00.000Z', recordKeys: [newKey], records: 1 }));
      expect((await store.cursors()).get('Audit.Exchange')!.recordsDelivered).toBe(41);
    });

    it('takes 5,000 records in one commit', async () => {
      const store = await open();
      const many = keys('bulk', 5000);
      await store.commit(batch({ recordKeys: many, records: 5000 }));
      const asked = many.filter((_, i) => i % 50 === 0);
      expect((await store.seenRecords('Audit.Exchange', asked)).size).toBe(100);
      expect(await store.seenRecords('Audit.Exchange', asked.map((k) => key(k.id, apiTime(Date.parse(`${k.creationTime}Z`) + 1_000))))).toEqual(new Set());
    });

    it('keeps each tenant to itself: cursors, counters, blobs and records with the same ids never cross, and tenants() lists both', async () => {
      const store = await open();
      const other = claimedView(store.database, fabrikam);
      await store.commit(batch());
      expect(await other.cursors()).toEqual(new Map());
      const [blob] = batch().blobs!;
      expect(await other.deliveredBlobs('Audit.Exchange', [blob!.contentId])).toEqual(new Set());
      expect(await other.seenRecords('Audit.Exchange', keys('rec', 40))).toEqual(new Set());
      // The same blob and record ids delivered for the other tenant, then forgotten there: the first keeps its own.
      await other.commit(batch({ at: '2026-11-25T11:00:00.000Z', checkpoint: '2026-11-25T10:30:00.000Z', records: 7 }));
      expect((await other.seenRecords('Audit.Exchange', keys('rec', 40))).size).toBe(40);
      await other.commit({ contentType: 'Audit.Exchange', at: '2026-11-25T11:01:00.000Z', forgetBlobsBefore: '2026-11-26T00:00:00Z', forgetRecordsCreatedBefore: '2026-11-26T00:00:00Z' });
      expect(await other.seenRecords('Audit.Exchange', keys('rec', 40))).toEqual(new Set());
      expect(await other.deliveredBlobs('Audit.Exchange', [blob!.contentId])).toEqual(new Set());
      expect((await store.seenRecords('Audit.Exchange', keys('rec', 40))).size).toBe(40);
      expect(await store.deliveredBlobs('Audit.Exchange', [blob!.contentId])).toEqual(new Set([blob!.contentId]));
      expect((await store.cursors()).get('Audit.Exchange')).toMatchObject({ checkpoint: '2026-11-25T09:00:00.000Z', recordsDelivered: 40, blobsDelivered: 2 });
      expect((await other.cursors()).get('Audit.Exchange')).toMatchObject({ checkpoint: '2026-11-25T10:30:00.000Z', recordsDelivered: 7, blobsDelivered: 2 });
      expect(await store.database.tenants()).toEqual([contoso, fabrikam].sort());
      // Sink positions are the process's (its sinks), whichever tenant's commit moved them.
      await other.commit({ at: '2026-11-25T11:02:00.000Z', sinkPositions: { 'file:/var/log/o365.ndjson': 99 } });
      expect(await store.sinkPositions()).toEqual({ 'file:/var/log/o365.ndjson': 99 });
    });

    it('keeps set-aside records of a commit, with their exact bytes, apart for their tenant', async () => {
      const store = await open();
      const bytes = [Buffer.from('42'), Buffer.from([0xff, 0x00, 0x7b]), Buffer.from('"a string with \\n and ünïcode"')];
      await store.commit(batch({ setAside: bytes.map((b, i) => ({ contentId: 'blob-x', index: i * 3, reason: i === 0 ? 'not an object' : 'no string Id', bytes: b })) }));
      await claimedView(store.database, fabrikam).commit({ contentType: 'Audit.General', at: '2026-11-25T10:01:00.000Z', setAside: [{ contentId: 'blob-y', index: 0, reason: 'not an object', bytes: Buffer.from('null') }] });
      const kept = await store.place.deadLetters(contoso);
      expect(kept.map((d) => ({ ...d, bytes: d.bytes.toString('hex') }))).toEqual(bytes.map((b, i) => ({
        contentType: 'Audit.Exchange', contentId: 'blob-x', index: i * 3, reason: i === 0 ? 'not an object' : 'no string Id', at: '2026-11-25T10:00:00.000Z', bytes: b.toString('hex'),
      })));
      expect((await store.place.deadLetters(fabrikam)).map((d) => [d.contentType, d.contentId, d.bytes.toString()])).toEqual([['Audit.General', 'blob-y', 'null']]);
      // Where each tenant's are kept, as the warnings name it: its own file or its rows, not another tenant's.
      expect(store.deadLetters).toContain(contoso);
      expect(store.database.tenant(fabrikam).deadLetters).toContain(fabrikam);
    });

    it('refuses a commit without a content type that carries more than sink positions, and applies none of it', async () => {
      const store = await open();
      await expect(store.commit({ at: '2026-11-25T10:00:00.000Z', checkpoint: '2026-11-25T09:00:00.000Z', sinkPositions: { stdout: null } } as Commit)).rejects.toThrow(/may only carry sink positions/);
      expect(await store.sinkPositions()).toEqual({});
    });
  });
}
