import { afterEach, describe, expect, it } from 'vitest';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { openStateDatabase, openStateDatabaseReadOnly, openStateStoreReadOnly } from '../../../connector/state/sqlite/store.ts';
import { openStateStore } from './open-store.ts';
import type { StateDatabase, StateStore } from '../../../connector/state/store.ts';
import { workDir } from '../../e2e/support.ts';
import { batch, claim, claimedView, contoso, fabrikam, key, keys } from './store-contract.ts';

const opened: Array<StateStore | StateDatabase> = [];
function kept<T extends StateStore | StateDatabase>(store: T): T {
  opened.push(store);
  return store;
}
afterEach(async () => {
  for (const store of opened.splice(0)) await store.close();
});

/** A state directory as the release before fleet mode left it: state.db at schema 2, one tenant's rows keyed by content type alone. */
async function schema2Dir(): Promise<string> {
  const dir = await workDir();
  const db = new DatabaseSync(join(dir, 'state.db'));
  db.exec(`
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    INSERT INTO meta VALUES ('schema_version', '2'), ('v2_imported_at', '2026-11-01T00:00:00.000Z');
    CREATE TABLE cursors (content_type TEXT PRIMARY KEY, checkpoint TEXT, records_delivered BIGINT NOT NULL DEFAULT 0, blobs_delivered BIGINT NOT NULL DEFAULT 0,
      duplicates_dropped BIGINT NOT NULL DEFAULT 0, expired_count BIGINT NOT NULL DEFAULT 0, last_content_seen TEXT, last_delivery_at TEXT, last_error_code TEXT,
      last_error_message TEXT, last_error_at TEXT, held_blobs BIGINT NOT NULL DEFAULT 0, updated_at TEXT, covered_from TEXT, late_blobs BIGINT NOT NULL DEFAULT 0,
      max_lateness_ms BIGINT NOT NULL DEFAULT 0, last_sweep_at TEXT);
    CREATE TABLE expired_blobs (content_type TEXT NOT NULL, seq BIGINT NOT NULL, content_id TEXT NOT NULL, content_created TEXT NOT NULL, detected_at TEXT NOT NULL, PRIMARY KEY (content_type, seq));
    CREATE TABLE delivered_blobs (content_type TEXT NOT NULL, content_id TEXT NOT NULL, content_created_ms BIGINT NOT NULL, PRIMARY KEY (content_type, content_id)) WITHOUT ROWID;
    CREATE INDEX delivered_blobs_by_created ON delivered_blobs (content_type, content_created_ms);
    CREATE TABLE record_ids (content_code SMALLINT NOT NULL, creation_second BIGINT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (content_code, creation_second, id)) WITHOUT ROWID;
    CREATE TABLE legacy_record_ids (content_type TEXT NOT NULL, id TEXT NOT NULL, seen_at_ms BIGINT NOT NULL, PRIMARY KEY (content_type, id)) WITHOUT ROWID;
    CREATE TABLE sink_positions (name TEXT PRIMARY KEY, position TEXT NOT NULL);
    INSERT INTO cursors (content_type, checkpoint, records_delivered, blobs_delivered, expired_count, updated_at, covered_from, late_blobs, max_lateness_ms)
      VALUES ('Audit.Exchange', '2026-11-25T09:00:00.000Z', 1200, 60, 1, '2026-11-25T09:15:00.000Z', '2026-11-20T00:00:00.000Z', 2, 5000);
    INSERT INTO expired_blobs VALUES ('Audit.Exchange', 1, 'gone-1', '2026-11-18T00:00:00.000Z', '2026-11-25T09:00:00.000Z');
    INSERT INTO delivered_blobs VALUES ('Audit.Exchange', 'blob-a', ${Date.UTC(2026, 10, 25, 8)});
    INSERT INTO record_ids VALUES (2, ${Date.UTC(2026, 10, 25, 8, 30) / 1000}, 'rec-a'), (2, ${Date.UTC(2026, 10, 25, 8, 31) / 1000}, 'rec-b');
    INSERT INTO legacy_record_ids VALUES ('Audit.Exchange', 'old-id', ${Date.UTC(2026, 10, 24)});
    INSERT INTO sink_positions VALUES ('file:/var/log/o365.ndjson', '4096');
  `);
  db.close();
  return dir;
}

/** What the schema-2 directory holds, asked of one tenant's view. */
async function expectLegacyState(store: StateStore): Promise<void> {
  expect((await store.cursors()).get('Audit.Exchange')).toMatchObject({
    checkpoint: '2026-11-25T09:00:00.000Z', recordsDelivered: 1200, blobsDelivered: 60, expiredCount: 1, coveredFrom: '2026-11-20T00:00:00.000Z', lateBlobs: 2, maxLatenessMs: 5000,
    expired: [{ contentId: 'gone-1', contentCreated: '2026-11-18T00:00:00.000Z', detectedAt: '2026-11-25T09:00:00.000Z' }],
  });
  expect(await store.deliveredBlobs('Audit.Exchange', ['blob-a', 'blob-b'])).toEqual(new Set(['blob-a']));
  expect(await store.seenRecords('Audit.Exchange', [key('rec-a', '2026-11-25T08:30:00'), key('rec-b', '2026-11-25T08:31:00'), key('old-id', undefined), key('rec-c', '2026-11-25T08:30:00')]))
    .toEqual(new Set(['rec-a', 'rec-b', 'old-id']));
  expect(await store.sinkPositions()).toEqual({ 'file:/var/log/o365.ndjson': 4096 });
}

describe('SQLite state of many tenants (schema 3)', () => {
  it('migrates a schema-2 directory: its rows become the legacy tenant \'\', as a run without a tenant reads them', async () => {
    const dir = await schema2Dir();
    const store = kept(await openStateStore(dir, { lockWaitMs: 0 }));
    await expectLegacyState(store);
    await store.close();
    const database = kept(await openStateDatabase(dir, { lockWaitMs: 0 }));
    expect(await database.tenants()).toEqual(['']);
  });

  it('lets a tenant\'s first run adopt the legacy state, which then is that tenant\'s alone', async () => {
    const dir = await schema2Dir();
    const store = kept(await openStateStore(dir, { lockWaitMs: 0, tenant: contoso }));
    await expectLegacyState(store);
    // It goes on from there: new records beside the adopted ones, forgetting covers both.
    await store.commit(batch({ recordKeys: keys('new', 3), records: 3 }));
    expect((await store.seenRecords('Audit.Exchange', [...keys('new', 3), key('rec-a', '2026-11-25T08:30:00')])).size).toBe(4);
    await store.close();
    const database = kept(await openStateDatabase(dir, { lockWaitMs: 0 }));
    expect(await database.tenants()).toEqual([contoso]);
    expect(await database.tenant('').cursors()).toEqual(new Map());
    expect(await database.tenant(fabrikam).seenRecords('Audit.Exchange', [key('rec-a', '2026-11-25T08:30:00'), key('old-id', undefined)])).toEqual(new Set());
    await database.close();
    // Another tenant's first run finds nothing left to adopt; the first one's state stays its own.
    const other = kept(await openStateStore(dir, { lockWaitMs: 0, tenant: fabrikam }));
    expect(await other.cursors()).toEqual(new Map());
    await other.close();
    const again = kept(await openStateStore(dir, { lockWaitMs: 0, tenant: contoso }));
    expect((await again.cursors()).get('Audit.Exchange')).toMatchObject({ recordsDelivered: 1203 });
  });

  it('adopts nothing for a tenant that already has state of its own', async () => {
    const dir = await schema2Dir();
    const database = kept(await openStateDatabase(dir, { lockWaitMs: 0 }));
    await claimedView(database, contoso).commit(batch({ contentType: 'Audit.General' }));
    await database.close();
    const store = kept(await openStateStore(dir, { lockWaitMs: 0, tenant: contoso }));
    expect([...(await store.cursors()).keys()]).toEqual(['Audit.General']);
    expect(await store.seenRecords('Audit.Exchange', [key('rec-a', '2026-11-25T08:30:00')])).toEqual(new Set());
    await store.close();
    const after = kept(await openStateDatabase(dir, { lockWaitMs: 0 }));
    expect(await after.tenants()).toEqual(['', contoso]);
  });

  it('keeps the set-aside records of the legacy tenant in dead-letter.ndjson and a tenant\'s in a file named after it', async () => {
    const dir = await workDir();
    const database = kept(await openStateDatabase(dir, { lockWaitMs: 0 }));
    const setAside = [{ contentId: 'blob-x', index: 0, reason: 'not an object', bytes: Buffer.from('42') }];
    await claimedView(database, '').commit(batch({ setAside }));
    await claimedView(database, contoso).commit(batch({ setAside }));
    expect((await readdir(dir)).filter((name) => name.startsWith('dead-letter')).sort()).toEqual([`dead-letter.${contoso}.ndjson`, 'dead-letter.ndjson']);
  });

  it('claims locally: every unit is this process\'s (the directory lock made it the only writer), held under its worker name', async () => {
    const database = kept(await openStateDatabase(await workDir(), { lockWaitMs: 0, workerName: 'collector-7' }));
    const unit = { tenant: contoso, contentType: 'Audit.Exchange' } as const;
    expect(await claim(database, unit)).toBe(true);
    expect(await claim(database, unit)).toBe(true);
    expect(await claim(database, { tenant: fabrikam, contentType: 'DLP.All' })).toBe(true);
    expect(await database.claims.workers()).toBe(1);
    expect((await database.claims.holders()).map((h) => [h.unit.tenant, h.unit.contentType, h.worker])).toEqual([
      [contoso, 'Audit.Exchange', 'collector-7'], [fabrikam, 'DLP.All', 'collector-7'],
    ]);
    await database.claims.release(unit);
    expect(await database.claims.holders()).toHaveLength(1);
    await database.claims.reconnect();
  });

  it('reads every tenant for status without the lock; a single-tenant read names the tenant when there are several', async () => {
    const dir = await workDir();
    const writer = kept(await openStateDatabase(dir, { lockWaitMs: 0 }));
    await claimedView(writer, contoso).commit(batch());
    const single = await openStateStoreReadOnly(dir);
    expect((await single.cursors()).get('Audit.Exchange')).toMatchObject({ recordsDelivered: 40 });
    await single.close();
    await claimedView(writer, fabrikam).commit(batch({ records: 1 }));
    const reader = kept(await openStateDatabaseReadOnly(dir));
    expect(await reader.tenants()).toEqual([contoso, fabrikam].sort());
    expect((await reader.tenant(fabrikam).cursors()).get('Audit.Exchange')).toMatchObject({ recordsDelivered: 1 });
    await expect(claim(reader, { tenant: contoso, contentType: 'Audit.Exchange' })).rejects.toThrow(/read-only/);
    await expect(openStateStoreReadOnly(dir)).rejects.toMatchObject({ code: 'STATE_SEVERAL_TENANTS', message: `${dir} holds the state of 2 tenants (${[contoso, fabrikam].sort().join(', ')})` });
    expect((await reader.tenant(contoso).cursors()).get('Audit.Exchange')).toMatchObject({ recordsDelivered: 40 });
  });
});
