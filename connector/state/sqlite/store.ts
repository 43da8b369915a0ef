/**
 * The default state store: one SQLite database, `<dir>/state.db` (node:sqlite, no native dependency), in WAL mode
 * with synchronous=FULL, so every commit is one durable transaction (a crash leaves all of it or none of it) and
 * `status` can read while a connector writes. Exclusivity comes from `<dir>/connector.lock` (directory-lock.ts),
 * which the operating system releases when the process dies. The schema is versioned (schema.ts); a
 * directory of the previous release's JSON files is imported on the first open (migrate-v2.ts).
 *
 * One database holds every tenant's state (fleet mode runs many tenants in one process; a single-tenant run is a
 * fleet of one). The rows of before fleet mode belong to tenant '', and the first run of a tenant on such a
 * directory adopts them (they were its state).
 *
 * Membership lookups (delivered blobs, records) are one indexed query per call, and a commit inserts all its
 * records in one statement: the keys travel as one JSON array that json_each unrolls inside SQLite. Records are
 * keyed by (tenant, content type, CreationTime, Id), so the index stays cheap to write however large it grows.
 */
import { chmodSync, existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { CollectedType, ContentType } from '../../../contract/content-types.ts';
import { ConnectorError } from '../../core/errors.ts';
import type { HeldLock } from '../../core/lock-file.ts';
import type { SinkPosition } from '../../core/records.ts';
import { assertPositionsOnly, cursorsOf, type CursorRow, type ExpiredRow } from '../cursor-rows.ts';
import { planCommit, recordKeyPairs, upsertCursorSql } from '../commit-plan.ts';
import { appendDeadLetters, deadLetterFileNameOf } from './dead-letter.ts';
import { prepareStateDirectory } from './state-directory.ts';
import { lockStateDirectory } from './directory-lock.ts';
import { failpoint } from './failpoint.ts';
import { LocalUnitClaims } from './local-claims.ts';
import { TenantView, viewClosingDatabase } from '../tenant-view.ts';
import { importV2States, readV2States, retireV2Files, V2StateView, type StateFileV2 } from './migrate-v2.ts';
import { assertKnownVersion, contentTypeCodes, currentSchemaVersion, getMeta, legacyTenant, migrate, schemaVersionOf, setMeta, stateDbName } from './schema.ts';
import { type StateDatabase, type StateStore, type UnitClaims } from '../store.ts';
import type { Commit, CursorState, RecordKey } from '../../core/commit.ts';

export interface OpenStateDatabaseOptions {
  /** How long to wait for a predecessor that still holds the directory's lock (it is exiting). */
  readonly lockWaitMs: number;
  readonly abortSignal?: AbortSignal | undefined;
  /** Called once when the lock is found taken and the wait for it begins (e.g. to log that it waits). */
  readonly onLockWait?: (() => void) | undefined;
  /** The worker name this process's claims are shown under (status's fleet view); default the host name. */
  readonly workerName?: string | undefined;
  /**
   * The tenant of a single-tenant run: a directory holding only the state of before fleet mode (tenant '') gives
   * it to this tenant (see adoptLegacyState).
   */
  readonly adoptLegacyTenant?: string | undefined;
}

/**
 * Page cache of the writer (SQLite's default is 2 MiB). Commits and lookups work in the region of the record
 * index of the last hours of CreationTime, which a few MiB hold; the cache counts against the process's memory.
 */
const cacheKiB = 2 * 1024;

/** How long one statement waits for another connection's lock (a `status` reader's, a WAL checkpoint's). */
const busyTimeoutMs = 5_000;

/**
 * Opens the state directory for a run: creates it (0700) when needed, takes its lock (waiting up to
 * `lockWaitMs`, then STATE_LOCKED), brings the schema up to date and imports the previous release's files.
 */
export async function openStateDatabase(dir: string, options: OpenStateDatabaseOptions): Promise<SqliteStateDatabase> {
  prepareStateDirectory(dir);
  const lock = await lockStateDirectory(dir, { waitMs: options.lockWaitMs, abortSignal: options.abortSignal, onWait: options.onLockWait });
  let db: DatabaseSync | undefined;
  try {
    const path = join(dir, stateDbName);
    db = new DatabaseSync(path, { timeout: busyTimeoutMs });
    chmodSync(path, 0o600); // before the first write: the -wal and -shm files take the database file's mode
    readable(() => {
      db!.exec('PRAGMA journal_mode = WAL');
      db!.exec('PRAGMA synchronous = FULL');
      db!.exec(`PRAGMA cache_size = -${cacheKiB}`);
      migrate(db!, path);
    }, path);
    await importPreviousRelease(db, dir);
    if (options.adoptLegacyTenant !== undefined) adoptLegacyState(db, options.adoptLegacyTenant);
    return new SqliteStateDatabase(dir, db, lock, new LocalUnitClaims(options.workerName ?? hostname()));
  } catch (error) {
    db?.close();
    lock.release();
    throw error;
  }
}

/**
 * Opens the state directory for reading only, as `status` does: takes no lock (works while a connector runs),
 * and creates nothing: a missing directory or database reads as empty (or as the previous release's files).
 */
export async function openStateDatabaseReadOnly(dir: string): Promise<StateDatabase> {
  const path = join(dir, stateDbName);
  if (!existsSync(path)) return new V2StateDatabase(dir, await readV2States(dir));
  const db = new DatabaseSync(path, { readOnly: true, timeout: busyTimeoutMs });
  try {
    const version = readable(() => schemaVersionOf(db, path), path);
    assertKnownVersion(version, path);
    // The first run of this release has not committed its import of the previous release's files yet (it is
    // running, died, or stopped at a corrupt file): those files are still the state.
    if (version === 0 || getMeta(db, 'v2_imported_at') === undefined) {
      db.close();
      return new V2StateDatabase(dir, await readV2States(dir));
    }
    if (version < currentSchemaVersion) {
      throw new ConnectorError('STATE_VERSION', `${path} has state schema ${version}, this connector reads ${currentSchemaVersion}`, { fix: 'run the connector once (`run --once`) to migrate it, then ask again' });
    }
    return new SqliteStateDatabase(dir, db, undefined, new LocalUnitClaims(hostname(), { readOnly: true }));
  } catch (error) {
    if (db.isOpen) db.close();
    throw error;
  }
}

/**
 * The read-only view of the one tenant whose state the directory holds ('' when it holds none), as `status` of a
 * single-tenant run reads it. Closing the view closes the database.
 */
export async function openStateStoreReadOnly(dir: string): Promise<StateStore> {
  const database = await openStateDatabaseReadOnly(dir);
  const tenants = await database.tenants();
  if (tenants.length > 1) {
    await database.close();
    throw new ConnectorError('STATE_SEVERAL_TENANTS', `${dir} holds the state of ${tenants.length} tenants (${tenants.map((t) => t === '' ? "''" : t).join(', ')})`, { fix: 'name the tenant whose state to read' });
  }
  return viewClosingDatabase(database, tenants[0] ?? legacyTenant);
}

/** The first open of a directory written by the previous release imports its JSON files (one transaction). */
async function importPreviousRelease(db: DatabaseSync, dir: string): Promise<void> {
  if (getMeta(db, 'v2_imported_at') === undefined) {
    const states = await readV2States(dir);
    db.exec('BEGIN IMMEDIATE');
    try {
      if (states.size > 0) importV2States(db, states);
      // Recorded even with nothing to import, so a later stray `<ContentType>.json` is never taken for state.
      setMeta(db, 'v2_imported_at', new Date().toISOString());
      db.exec('COMMIT');
    } catch (error) {
      if (db.isTransaction) db.exec('ROLLBACK');
      throw error;
    }
  }
  // Also after a crash between that commit and the renames: the files are already in the database.
  await retireV2Files(dir);
}

/**
 * A state directory of before fleet mode holds one tenant's state under tenant ''. The first run that names its
 * tenant, while the directory holds nothing of that tenant yet, re-keys those rows to it (one transaction), so the
 * run goes on where the previous one stopped. Record Ids move by renaming their tenant code: no row is rewritten.
 */
function adoptLegacyState(db: DatabaseSync, tenant: string): void {
  if (tenant === legacyTenant) return;
  db.exec('BEGIN IMMEDIATE');
  try {
    const has = db.prepare('SELECT 1 AS found FROM cursors WHERE tenant = ? LIMIT 1');
    if (has.get(legacyTenant) !== undefined && has.get(tenant) === undefined) {
      for (const table of ['cursors', 'expired_blobs', 'delivered_blobs', 'legacy_record_ids']) db.prepare(`UPDATE ${table} SET tenant = ? WHERE tenant = ''`).run(tenant);
      // A code of the tenant's own (none is made without a cursor, but a hand-edited database may have one) gives way.
      const own = db.prepare('SELECT code FROM tenants WHERE tenant = ?').get(tenant) as { code: number } | undefined;
      if (own) {
        db.prepare('DELETE FROM record_ids WHERE tenant_code = ?').run(own.code);
        db.prepare('DELETE FROM tenants WHERE code = ?').run(own.code);
      }
      db.prepare("UPDATE tenants SET tenant = ? WHERE tenant = ''").run(tenant);
    }
    db.exec('COMMIT');
  } catch (error) {
    if (db.isTransaction) db.exec('ROLLBACK');
    throw error;
  }
}

/** The tenant's code in record_ids, as a scalar subquery: SQLite evaluates it once, and the key probes stay. */
const tenantCode = '(SELECT code FROM tenants WHERE tenant = ?)';

function prepareReads(db: DatabaseSync) {
  return {
    tenants: db.prepare('SELECT DISTINCT tenant FROM cursors ORDER BY tenant'),
    cursors: db.prepare('SELECT * FROM cursors WHERE tenant = ? ORDER BY content_type'),
    expired: db.prepare('SELECT content_type, content_id, content_created, detected_at FROM expired_blobs WHERE tenant = ? ORDER BY content_type, seq'),
    sinkPositions: db.prepare('SELECT name, position FROM sink_positions ORDER BY name'),
    deliveredBlobs: db.prepare('SELECT content_id FROM delivered_blobs WHERE tenant = ? AND content_type = ? AND content_id IN (SELECT value FROM json_each(?))'),
    // Row values: one primary-key probe per key (a join on json_each would scan the table instead).
    seenRecords: db.prepare(`SELECT id FROM record_ids WHERE tenant_code = ${tenantCode} AND content_code = ?
      AND (creation_second, id) IN (SELECT value ->> 0, value ->> 1 FROM json_each(?))`),
    seenLegacyIds: db.prepare('SELECT id FROM legacy_record_ids WHERE tenant = ? AND content_type = ? AND id IN (SELECT value ->> 1 FROM json_each(?))'),
    anyLegacyIds: db.prepare('SELECT 1 AS found FROM legacy_record_ids LIMIT 1'),
  };
}

function prepareWrites(db: DatabaseSync) {
  return {
    cursor: db.prepare('SELECT * FROM cursors WHERE tenant = ? AND content_type = ?'),
    upsertCursor: db.prepare(upsertCursorSql(() => '?')),
    insertBlobs: db.prepare(`INSERT INTO delivered_blobs (tenant, content_type, content_id, content_created_ms)
      SELECT ?, ?, json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?) WHERE true
      ON CONFLICT (tenant, content_type, content_id) DO UPDATE SET content_created_ms = excluded.content_created_ms`),
    insertExpired: db.prepare('INSERT INTO expired_blobs (tenant, content_type, seq, content_id, content_created, detected_at) VALUES (?, ?, ?, ?, ?, ?)'),
    trimExpired: db.prepare('DELETE FROM expired_blobs WHERE tenant = ? AND content_type = ? AND seq <= ?'),
    insertTenant: db.prepare('INSERT INTO tenants (tenant) VALUES (?) ON CONFLICT (tenant) DO NOTHING'),
    // In key order: each b-tree page is visited once. A repeated key (the pipeline sends none) is kept once.
    insertRecords: db.prepare(`INSERT INTO record_ids (tenant_code, content_code, creation_second, id)
      SELECT ${tenantCode}, ?, value ->> 0, value ->> 1 FROM json_each(?) WHERE true ORDER BY 3, 4
      ON CONFLICT (tenant_code, content_code, creation_second, id) DO NOTHING`),
    forgetBlobs: db.prepare('DELETE FROM delivered_blobs WHERE tenant = ? AND content_type = ? AND content_created_ms < ?'),
    // Second 0 (no readable CreationTime: the API always sends one) has no age: such records are kept.
    forgetRecords: db.prepare(`DELETE FROM record_ids WHERE tenant_code = ${tenantCode} AND content_code = ? AND creation_second < ? AND creation_second <> 0`),
    forgetLegacyIds: db.prepare('DELETE FROM legacy_record_ids WHERE tenant = ? AND content_type = ? AND seen_at_ms < ?'),
    upsertSinkPosition: db.prepare('INSERT INTO sink_positions (name, position) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET position = excluded.position'),
  };
}

type WriteStatements = ReturnType<typeof prepareWrites>;

/** Every tenant's state in one state directory; through openStateDatabase (a run) or openStateDatabaseReadOnly (`status`, lock undefined). */
export class SqliteStateDatabase implements StateDatabase {
  readonly location: string;
  readonly claims: UnitClaims;
  readonly #db: DatabaseSync;
  readonly #lock: HeldLock | undefined;
  readonly #reads: ReturnType<typeof prepareReads>;
  readonly #writes: WriteStatements | undefined;
  /** Ids imported from the previous release remain (they are asked too, until forgotten). */
  #legacyIds: boolean;

  constructor(location: string, db: DatabaseSync, lock: HeldLock | undefined, claims: UnitClaims) {
    this.location = location;
    this.claims = claims;
    this.#db = db;
    this.#lock = lock;
    this.#reads = prepareReads(db);
    this.#writes = lock ? prepareWrites(db) : undefined;
    this.#legacyIds = this.#reads.anyLegacyIds.get() !== undefined;
  }

  tenant(tenantId: string): TenantView {
    return new TenantView(this, tenantId);
  }

  deadLettersOf(tenant: string): string {
    return join(this.location, deadLetterFileNameOf(tenant));
  }

  async tenants(): Promise<string[]> {
    return (this.#reads.tenants.all() as Array<{ tenant: string }>).map((row) => row.tenant);
  }

  /** @internal the reads and commits of the tenant views */
  cursorsOf(tenant: string): Map<CollectedType, CursorState> {
    const path = join(this.location, stateDbName);
    return cursorsOf(this.#reads.cursors.all(tenant) as unknown as CursorRow[], this.#reads.expired.all(tenant) as unknown as ExpiredRow[], path, checkpointFix(path));
  }

  sinkPositions(): Record<string, SinkPosition> {
    const rows = this.#reads.sinkPositions.all() as Array<{ name: string; position: string }>;
    return Object.fromEntries(rows.map((row) => [row.name, JSON.parse(row.position) as SinkPosition]));
  }

  deliveredBlobs(tenant: string, contentType: CollectedType, contentIds: readonly string[]): Set<string> {
    if (contentIds.length === 0) return new Set();
    const rows = this.#reads.deliveredBlobs.all(tenant, contentType, JSON.stringify(contentIds)) as Array<{ content_id: string }>;
    return new Set(rows.map((row) => row.content_id));
  }

  seenRecords(tenant: string, contentType: CollectedType, keys: readonly RecordKey[]): Set<string> {
    if (keys.length === 0) return new Set();
    const json = JSON.stringify(recordKeyPairs(keys)); // [[creationSecond, id], ...], the form the record statements unroll
    const seen = new Set<string>();
    for (const row of this.#reads.seenRecords.all(tenant, contentTypeCodes[contentType], json) as Array<{ id: string }>) seen.add(row.id);
    if (this.#legacyIds) for (const row of this.#reads.seenLegacyIds.all(tenant, contentType, json) as Array<{ id: string }>) seen.add(row.id);
    return seen;
  }

  commit(tenant: string, commit: Commit): void {
    const writes = this.#writes;
    if (!writes) throw new Error(`state ${this.location} is open read-only`);
    if (!this.#db.isOpen) throw new Error(`state ${this.location} is closed`);
    const db = this.#db;
    // Before the transaction that delivers their blobs: a crash in between appends them again, never loses them.
    if (commit.contentType !== undefined && commit.setAside?.length) appendDeadLetters(this.location, tenant, commit.contentType, commit.at, commit.setAside);
    db.exec('BEGIN IMMEDIATE');
    try {
      if (commit.contentType !== undefined) this.#applyToContentType(writes, tenant, commit.contentType, commit);
      else assertPositionsOnly(commit);
      for (const [name, position] of Object.entries(commit.sinkPositions ?? {})) writes.upsertSinkPosition.run(name, JSON.stringify(position ?? null));
      failpoint('commit-mid-transaction');
      db.exec('COMMIT'); // synchronous=FULL: the WAL is on disk when this returns
      if (this.#legacyIds && commit.forgetRecordsCreatedBefore !== undefined) this.#legacyIds = this.#reads.anyLegacyIds.get() !== undefined;
    } catch (error) {
      if (db.isTransaction) db.exec('ROLLBACK');
      throw error;
    }
  }

  #applyToContentType(writes: WriteStatements, tenant: string, contentType: CollectedType, commit: Commit): void {
    const plan = planCommit(writes.cursor.get(tenant, contentType) as CursorRow | undefined, tenant, contentType, commit);
    writes.upsertCursor.run(...plan.cursor);
    if (plan.blobs.length > 0) writes.insertBlobs.run(tenant, contentType, JSON.stringify(plan.blobs));
    if (plan.expired.length > 0) {
      for (const e of plan.expired) writes.insertExpired.run(tenant, contentType, e.seq, e.contentId, e.contentCreated, e.detectedAt);
      writes.trimExpired.run(tenant, contentType, plan.trimExpiredThrough);
    }
    if (plan.recordKeys.length > 0) {
      writes.insertTenant.run(tenant);
      writes.insertRecords.run(tenant, contentTypeCodes[contentType], JSON.stringify(plan.recordKeys));
    }
    // After the inserts: forgetting applies to this commit's own entries too.
    if (plan.forgetBlobsBeforeMs !== undefined) writes.forgetBlobs.run(tenant, contentType, plan.forgetBlobsBeforeMs);
    if (plan.forgetRecordsBeforeMs !== undefined) {
      writes.forgetRecords.run(tenant, contentTypeCodes[contentType], plan.forgetRecordsBeforeSecond!);
      if (this.#legacyIds) writes.forgetLegacyIds.run(tenant, contentType, plan.forgetRecordsBeforeMs);
    }
  }

  async close(): Promise<void> {
    if (!this.#db.isOpen) return;
    this.#db.close();
    this.#lock?.release();
  }
}

/** A directory the previous release wrote and this one has not run on yet: its files are tenant ''. */
class V2StateDatabase implements StateDatabase {
  readonly location: string;
  readonly claims: UnitClaims = new LocalUnitClaims(hostname(), { readOnly: true });
  readonly #states: ReadonlyMap<ContentType, StateFileV2>;

  constructor(location: string, states: ReadonlyMap<ContentType, StateFileV2>) {
    this.location = location;
    this.#states = states;
  }

  tenant(tenantId: string): StateStore {
    return new V2StateView(this.location, tenantId === legacyTenant ? this.#states : new Map());
  }

  async tenants(): Promise<string[]> {
    return this.#states.size > 0 ? [legacyTenant] : [];
  }

  async close(): Promise<void> {}
}

function checkpointFix(path: string) {
  return (row: CursorRow) => `restore the state directory from a backup, or set it to an ISO time (sqlite3 ${path} "UPDATE cursors SET checkpoint = '2026-11-25T00:00:00.000Z' WHERE tenant = '${row.tenant}' AND content_type = '${row.content_type}'"); records after that time are delivered again only if not remembered`;
}

/** A file that is not a SQLite database (or a damaged one) is STATE_CORRUPT, with the way out. */
function readable<T>(action: () => T, path: string): T {
  try {
    return action();
  } catch (error) {
    const code = (error as { errcode?: number }).errcode;
    if (code !== undefined && [11, 26].includes(code & 0xff)) { // SQLITE_CORRUPT, SQLITE_NOTADB
      throw new ConnectorError('STATE_CORRUPT', `${path} is not a readable state database`, { fix: 'restore it from backup, or move the state directory away to start over from --since (records may repeat)', cause: error });
    }
    throw error;
  }
}
