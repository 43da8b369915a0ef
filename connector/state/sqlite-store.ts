/**
 * The default state store: one SQLite database, `<dir>/state.db` (node:sqlite, no native dependency), in WAL mode
 * with synchronous=FULL, so every commit is one durable transaction (a crash leaves all of it or none of it) and
 * `status` can read while a connector writes. Exclusivity comes from `<dir>/connector.lock` (directory-lock.ts),
 * which the operating system releases when the process dies. The schema is versioned (sqlite-schema.ts); a
 * directory of the previous release's JSON files is imported on the first open (migrate-v2.ts).
 *
 * Membership lookups (delivered blobs, records) are one indexed query per call, and a commit inserts all its
 * records in one statement: the keys travel as one JSON array that json_each unrolls inside SQLite. Records are
 * keyed by (content type, CreationTime, Id), so the index stays cheap to write however large it grows.
 */
import { chmodSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { ContentType } from '../api/content-types.ts';
import { settingSpecs } from '../config/settings.ts';
import { ConnectorError } from '../errors.ts';
import type { SinkPosition } from '../sinks/sink.ts';
import { appendDeadLetters } from './dead-letter.ts';
import { prepareStateDirectory } from './state-directory.ts';
import { lockStateDirectory, type DirectoryLock } from './directory-lock.ts';
import { failpoint } from './failpoint.ts';
import { importV2States, readV2States, retireV2Files, V2StateView } from './migrate-v2.ts';
import { assertKnownVersion, contentTypeCodes, currentSchemaVersion, getMeta, migrate, schemaVersionOf, setMeta, stateDbName } from './sqlite-schema.ts';
import { creationSecond, expiredKept, type Commit, type CursorState, type RecordKey, type StateStore } from './store.ts';


export interface OpenStateStoreOptions {
  /** How long to wait for a predecessor that still holds the directory's lock (it is exiting); default 15 s. */
  readonly lockWaitMs?: number | undefined;
  readonly abortSignal?: AbortSignal | undefined;
  /** Called once when the lock is found taken and the wait for it begins (e.g. to log that it waits). */
  readonly onLockWait?: (() => void) | undefined;
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
export async function openStateStore(dir: string, options: OpenStateStoreOptions = {}): Promise<SqliteStateStore> {
  prepareStateDirectory(dir);
  const lock = await lockStateDirectory(dir, { waitMs: options.lockWaitMs ?? settingSpecs.stateLockWaitSeconds.default * 1000, abortSignal: options.abortSignal, onWait: options.onLockWait });
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
    return new SqliteStateStore(dir, db, lock);
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
export async function openStateStoreReadOnly(dir: string): Promise<StateStore> {
  const path = join(dir, stateDbName);
  if (!existsSync(path)) return new V2StateView(dir, await readV2States(dir));
  const db = new DatabaseSync(path, { readOnly: true, timeout: busyTimeoutMs });
  try {
    const version = readable(() => schemaVersionOf(db), path);
    assertKnownVersion(version, path);
    // The first run of this release has not committed its import of the previous release's files yet (it is
    // running, died, or stopped at a corrupt file): those files are still the state.
    if (version === 0 || getMeta(db, 'v2_imported_at') === undefined) {
      db.close();
      return new V2StateView(dir, await readV2States(dir));
    }
    if (version < currentSchemaVersion) {
      throw new ConnectorError('STATE_VERSION', `${path} has state schema ${version}, this connector reads ${currentSchemaVersion}`, { fix: 'run the connector once (`run --once`) to migrate it, then ask again' });
    }
    return new SqliteStateStore(dir, db, undefined);
  } catch (error) {
    if (db.isOpen) db.close();
    throw error;
  }
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

interface CursorRow {
  content_type: ContentType;
  checkpoint: string | null;
  records_delivered: number;
  blobs_delivered: number;
  duplicates_dropped: number;
  expired_count: number;
  last_content_seen: string | null;
  last_delivery_at: string | null;
  last_error_code: string | null;
  last_error_message: string | null;
  last_error_at: string | null;
  held_blobs: number;
  updated_at: string | null;
  covered_from: string | null;
  late_blobs: number;
  max_lateness_ms: number;
  last_sweep_at: string | null;
}

interface ExpiredRow { content_type: ContentType; content_id: string; content_created: string; detected_at: string }

const cursorColumns = ['content_type', 'checkpoint', 'records_delivered', 'blobs_delivered', 'duplicates_dropped', 'expired_count', 'last_content_seen',
  'last_delivery_at', 'last_error_code', 'last_error_message', 'last_error_at', 'held_blobs', 'updated_at',
  'covered_from', 'late_blobs', 'max_lateness_ms', 'last_sweep_at'] as const satisfies ReadonlyArray<keyof CursorRow>;

function prepareReads(db: DatabaseSync) {
  return {
    cursors: db.prepare('SELECT * FROM cursors ORDER BY content_type'),
    expired: db.prepare('SELECT content_type, content_id, content_created, detected_at FROM expired_blobs ORDER BY content_type, seq'),
    sinkPositions: db.prepare('SELECT name, position FROM sink_positions ORDER BY name'),
    deliveredBlobs: db.prepare('SELECT content_id FROM delivered_blobs WHERE content_type = ? AND content_id IN (SELECT value FROM json_each(?))'),
    // Row values: one primary-key probe per key (a join on json_each would scan the table instead).
    seenRecords: db.prepare(`SELECT id FROM record_ids WHERE content_code = ?
      AND (creation_second, id) IN (SELECT value ->> 0, value ->> 1 FROM json_each(?))`),
    seenLegacyIds: db.prepare('SELECT id FROM legacy_record_ids WHERE content_type = ? AND id IN (SELECT value ->> 1 FROM json_each(?))'),
    anyLegacyIds: db.prepare('SELECT 1 AS found FROM legacy_record_ids LIMIT 1'),
  };
}

function prepareWrites(db: DatabaseSync) {
  const updates = cursorColumns.slice(1).map((column) => `${column} = excluded.${column}`).join(', ');
  return {
    cursor: db.prepare('SELECT * FROM cursors WHERE content_type = ?'),
    upsertCursor: db.prepare(`INSERT INTO cursors (${cursorColumns.join(', ')}) VALUES (${cursorColumns.map(() => '?').join(', ')})
      ON CONFLICT (content_type) DO UPDATE SET ${updates}`),
    insertBlobs: db.prepare(`INSERT INTO delivered_blobs (content_type, content_id, content_created_ms)
      SELECT ?, json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?) WHERE true
      ON CONFLICT (content_type, content_id) DO UPDATE SET content_created_ms = excluded.content_created_ms`),
    insertExpired: db.prepare('INSERT INTO expired_blobs (content_type, seq, content_id, content_created, detected_at) VALUES (?, ?, ?, ?, ?)'),
    trimExpired: db.prepare('DELETE FROM expired_blobs WHERE content_type = ? AND seq <= ?'),
    // In key order: each b-tree page is visited once. A repeated key (the pipeline sends none) is kept once.
    insertRecords: db.prepare(`INSERT INTO record_ids (content_code, creation_second, id)
      SELECT ?, value ->> 0, value ->> 1 FROM json_each(?) WHERE true ORDER BY 2, 3
      ON CONFLICT (content_code, creation_second, id) DO NOTHING`),
    forgetBlobs: db.prepare('DELETE FROM delivered_blobs WHERE content_type = ? AND content_created_ms < ?'),
    // Second 0 (no readable CreationTime: the API always sends one) has no age: such records are kept.
    forgetRecords: db.prepare('DELETE FROM record_ids WHERE content_code = ? AND creation_second < ? AND creation_second <> 0'),
    forgetLegacyIds: db.prepare('DELETE FROM legacy_record_ids WHERE content_type = ? AND seen_at_ms < ?'),
    upsertSinkPosition: db.prepare('INSERT INTO sink_positions (name, position) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET position = excluded.position'),
  };
}

type WriteStatements = ReturnType<typeof prepareWrites>;

export class SqliteStateStore implements StateStore {
  readonly location: string;
  readonly #db: DatabaseSync;
  readonly #lock: DirectoryLock | undefined;
  readonly #reads: ReturnType<typeof prepareReads>;
  readonly #writes: WriteStatements | undefined;
  /** Ids imported from the previous release remain (they are asked too, until forgotten). */
  #legacyIds: boolean;

  /** Through openStateStore (a run) or openStateStoreReadOnly (`status`, lock undefined). */
  constructor(location: string, db: DatabaseSync, lock: DirectoryLock | undefined) {
    this.location = location;
    this.#db = db;
    this.#lock = lock;
    this.#reads = prepareReads(db);
    this.#writes = lock ? prepareWrites(db) : undefined;
    this.#legacyIds = this.#reads.anyLegacyIds.get() !== undefined;
  }

  async cursors(): Promise<Map<ContentType, CursorState>> {
    const expired = new Map<ContentType, CursorState['expired'][number][]>();
    for (const row of this.#reads.expired.all() as unknown as ExpiredRow[]) {
      const list = expired.get(row.content_type) ?? [];
      list.push({ contentId: row.content_id, contentCreated: row.content_created, detectedAt: row.detected_at });
      expired.set(row.content_type, list);
    }
    const cursors = new Map<ContentType, CursorState>();
    for (const row of this.#reads.cursors.all() as unknown as CursorRow[]) cursors.set(row.content_type, cursorOf(row, expired.get(row.content_type) ?? [], join(this.location, stateDbName)));
    return cursors;
  }

  async sinkPositions(): Promise<Record<string, SinkPosition>> {
    const positions: Record<string, SinkPosition> = {};
    for (const row of this.#reads.sinkPositions.all() as Array<{ name: string; position: string }>) positions[row.name] = JSON.parse(row.position) as SinkPosition;
    return positions;
  }

  async deliveredBlobs(contentType: ContentType, contentIds: readonly string[]): Promise<Set<string>> {
    if (contentIds.length === 0) return new Set();
    const rows = this.#reads.deliveredBlobs.all(contentType, JSON.stringify(contentIds)) as Array<{ content_id: string }>;
    return new Set(rows.map((row) => row.content_id));
  }

  async seenRecords(contentType: ContentType, keys: readonly RecordKey[]): Promise<Set<string>> {
    if (keys.length === 0) return new Set();
    const json = keysJson(keys);
    const seen = new Set<string>();
    for (const row of this.#reads.seenRecords.all(contentTypeCodes[contentType], json) as Array<{ id: string }>) seen.add(row.id);
    if (this.#legacyIds) for (const row of this.#reads.seenLegacyIds.all(contentType, json) as Array<{ id: string }>) seen.add(row.id);
    return seen;
  }

  async commit(commit: Commit): Promise<void> {
    const writes = this.#writes;
    if (!writes) throw new Error(`state ${this.location} is open read-only`);
    const db = this.#db;
    // Before the transaction that delivers their blobs: a crash in between appends them again, never loses them.
    if (commit.contentType !== undefined && commit.setAside?.length) appendDeadLetters(this.location, commit.contentType, commit.at, commit.setAside);
    db.exec('BEGIN IMMEDIATE');
    try {
      if (commit.contentType !== undefined) this.#applyToContentType(writes, commit.contentType, commit);
      else if (Object.entries(commit).some(([key, value]) => value !== undefined && key !== 'at' && key !== 'sinkPositions')) {
        throw new TypeError('a commit without contentType may only carry sink positions');
      }
      for (const [name, position] of Object.entries(commit.sinkPositions ?? {})) writes.upsertSinkPosition.run(name, JSON.stringify(position ?? null));
      failpoint('commit-mid-transaction');
      db.exec('COMMIT'); // synchronous=FULL: the WAL is on disk when this returns
      if (this.#legacyIds && commit.forgetRecordsCreatedBefore !== undefined) this.#legacyIds = this.#reads.anyLegacyIds.get() !== undefined;
    } catch (error) {
      if (db.isTransaction) db.exec('ROLLBACK');
      throw error;
    }
  }

  #applyToContentType(writes: WriteStatements, contentType: ContentType, commit: Commit): void {
    const current = writes.cursor.get(contentType) as CursorRow | undefined;
    const next = nextCursor(current ?? emptyCursorRow(contentType), commit);
    writes.upsertCursor.run(...cursorColumns.map((column) => next[column]));
    if (commit.blobs?.length) {
      writes.insertBlobs.run(contentType, JSON.stringify(commit.blobs.map((blob) => [blob.contentId, epochMs(blob.contentCreated, 'blobs[].contentCreated')])));
    }
    if (commit.expired?.length) {
      const before = current?.expired_count ?? 0;
      commit.expired.forEach((e, i) => writes.insertExpired.run(contentType, before + i + 1, e.contentId, e.contentCreated, e.detectedAt));
      writes.trimExpired.run(contentType, next.expired_count - expiredKept);
    }
    if (commit.recordKeys?.length) writes.insertRecords.run(contentTypeCodes[contentType], keysJson(commit.recordKeys));
    // After the inserts: forgetting applies to this commit's own entries too.
    if (commit.forgetBlobsBefore !== undefined) writes.forgetBlobs.run(contentType, epochMs(commit.forgetBlobsBefore, 'forgetBlobsBefore'));
    if (commit.forgetRecordsCreatedBefore !== undefined) {
      const before = epochMs(commit.forgetRecordsCreatedBefore, 'forgetRecordsCreatedBefore');
      writes.forgetRecords.run(contentTypeCodes[contentType], Math.floor(before / 1000));
      if (this.#legacyIds) writes.forgetLegacyIds.run(contentType, before);
    }
  }

  async close(): Promise<void> {
    if (!this.#db.isOpen) return;
    this.#db.close();
    this.#lock?.release();
  }
}

/** `[[creationSecond, id], ...]`, the form the record statements unroll. */
function keysJson(keys: readonly RecordKey[]): string {
  return JSON.stringify(keys.map((key) => [creationSecond(key.creationTime), key.id]));
}

function emptyCursorRow(contentType: ContentType): CursorRow {
  return {
    content_type: contentType, checkpoint: null, records_delivered: 0, blobs_delivered: 0, duplicates_dropped: 0, expired_count: 0,
    last_content_seen: null, last_delivery_at: null, last_error_code: null, last_error_message: null, last_error_at: null, held_blobs: 0, updated_at: null,
    covered_from: null, late_blobs: 0, max_lateness_ms: 0, last_sweep_at: null,
  };
}

/** The cursor after a commit: counters add up, the rest is replaced when the commit says so. */
function nextCursor(row: CursorRow, commit: Commit): CursorRow {
  const expiredIds = new Set(commit.expired?.map((e) => e.contentId));
  // Expired blobs are listed in `blobs` too (never fetch them again), but were not delivered.
  const delivered = (commit.blobs ?? []).filter((blob) => !expiredIds.has(blob.contentId));
  let lastContentSeen = row.last_content_seen;
  for (const blob of delivered) {
    if (lastContentSeen === null || epochMs(blob.contentCreated, 'blobs[].contentCreated') > Date.parse(lastContentSeen)) lastContentSeen = blob.contentCreated;
  }
  const records = commit.records ?? 0;
  const error = commit.lastError === undefined ? row : {
    last_error_code: commit.lastError?.code ?? null, last_error_message: commit.lastError?.message ?? null, last_error_at: commit.lastError?.at ?? null,
  };
  return {
    ...row,
    checkpoint: commit.checkpoint ?? row.checkpoint,
    records_delivered: row.records_delivered + records,
    blobs_delivered: row.blobs_delivered + delivered.length,
    duplicates_dropped: row.duplicates_dropped + (commit.duplicates ?? 0),
    expired_count: row.expired_count + (commit.expired?.length ?? 0),
    last_content_seen: lastContentSeen,
    last_delivery_at: records > 0 ? commit.at : row.last_delivery_at,
    last_error_code: error.last_error_code, last_error_message: error.last_error_message, last_error_at: error.last_error_at,
    held_blobs: commit.heldBlobs ?? row.held_blobs,
    updated_at: commit.at,
    // The earliest start ever covered stands: a later pass never narrows it.
    covered_from: row.covered_from ?? commit.coveredFrom ?? null,
    late_blobs: row.late_blobs + (commit.late?.length ?? 0),
    max_lateness_ms: Math.max(row.max_lateness_ms, ...(commit.late ?? []).map((late) => late.latenessMs)),
    last_sweep_at: commit.sweptAt ?? row.last_sweep_at,
  };
}

function cursorOf(row: CursorRow, expired: CursorState['expired'], path: string): CursorState {
  if (row.checkpoint !== null && !Number.isFinite(Date.parse(row.checkpoint))) {
    throw new ConnectorError('STATE_CORRUPT', `${path}: the checkpoint of ${row.content_type}, ${JSON.stringify(row.checkpoint)}, is not a time`, {
      fix: `restore the state directory from a backup, or set it to an ISO time (sqlite3 ${path} "UPDATE cursors SET checkpoint = '2026-11-25T00:00:00.000Z' WHERE content_type = '${row.content_type}'"); records after that time are delivered again only if not remembered`,
    });
  }
  return {
    contentType: row.content_type,
    checkpoint: row.checkpoint ?? undefined,
    recordsDelivered: row.records_delivered,
    blobsDelivered: row.blobs_delivered,
    duplicatesDropped: row.duplicates_dropped,
    expiredCount: row.expired_count,
    expired,
    lastContentSeen: row.last_content_seen ?? undefined,
    lastDeliveryAt: row.last_delivery_at ?? undefined,
    lastError: row.last_error_code === null ? undefined : { code: row.last_error_code, message: row.last_error_message ?? '', at: row.last_error_at ?? '' },
    heldBlobs: row.held_blobs,
    updatedAt: row.updated_at ?? undefined,
    coveredFrom: row.covered_from ?? undefined,
    lateBlobs: row.late_blobs,
    maxLatenessMs: row.max_lateness_ms,
    lastSweepAt: row.last_sweep_at ?? undefined,
  };
}

function epochMs(iso: string, field: string): number {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new TypeError(`commit.${field} is not a timestamp: ${iso}`);
  return ms;
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
