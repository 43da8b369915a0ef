/**
 * The state of the previous release (state version 2): one JSON file per content type (`Audit.Exchange.json`,
 * ...) rewritten whole on every commit, and a `lock` file holding the owner's pid. The first run of this release
 * imports those files into state.db in one transaction, then renames them `<name>.migrated-v2` (kept for a
 * downgrade by hand) and removes the old lock file and any temp file of an interrupted save. Until that run,
 * `status` reads them directly (read-only, without importing anything).
 */
import { readdir, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import { isContentType, type ContentType } from '../../../contract/content-types.ts';
import { ConnectorError } from '../../core/errors.ts';
import type { SinkPosition } from '../../core/records.ts';
import { type StateStore } from '../store.ts';
import { deadLetterFileName } from './dead-letter.ts';
import { expiredKept, type CursorState, type ExpiredContent, type LastError, type RecordKey } from '../../core/commit.ts';

/** A state file of version 2, as the previous release's FileStateStore wrote it. */
export interface StateFileV2 {
  version: 2;
  contentType: ContentType;
  /** Commit order across content types: the file with the highest one holds the sink positions to resume from. */
  sequence: number;
  checkpoint: string | undefined;
  /** contentId -> contentCreated of delivered blobs. */
  delivered: Record<string, string>;
  /** [record Id, contentCreated of its blob in epoch ms]. */
  recentIds: Array<[string, number]>;
  sinkPositions: Record<string, SinkPosition>;
  recordsDelivered: number;
  blobsDelivered: number;
  duplicatesDropped: number;
  expiredCount: number;
  expired: ExpiredContent[];
  lastContentSeen: string | undefined;
  lastDeliveryAt: string | undefined;
  lastError: LastError | undefined;
  heldBlobs: number;
  updatedAt: string | undefined;
}

export const migratedSuffix = '.migrated-v2';
/** The previous release's pid lock file: ignored (a pid proves nothing) and removed on migration. */
export const v2LockFileName = 'lock';

/** Reads every version-2 state file of a directory (none when the directory does not exist). */
export async function readV2States(dir: string): Promise<Map<ContentType, StateFileV2>> {
  const states = new Map<ContentType, StateFileV2>();
  for (const name of await namesIn(dir)) {
    if (!isV2StateFileName(name)) continue;
    const contentType = name.slice(0, -'.json'.length) as ContentType;
    const file = join(dir, name);
    let parsed: StateFileV2;
    try {
      parsed = JSON.parse(await readFile(file, 'utf8')) as StateFileV2;
    } catch {
      throw new ConnectorError('STATE_CORRUPT', `${file} is not valid JSON`, { fix: 'restore it from backup, or move it away to start that content type over from --since (records may repeat)' });
    }
    if (parsed.version !== 2 || parsed.contentType !== contentType) {
      throw new ConnectorError('STATE_CORRUPT', `${file} is not a state file of this connector version`, { fix: 'give this connector its own --state directory' });
    }
    states.set(contentType, parsed);
  }
  return states;
}

/** Writes the version-2 states into an empty schema; the caller wraps it in the transaction that records it. */
export function importV2States(db: DatabaseSync, states: ReadonlyMap<ContentType, StateFileV2>): void {
  // Into the legacy tenant: the previous release knew one tenant, and its first run under a tenant adopts them.
  const insertCursor = db.prepare(`INSERT INTO cursors (tenant, content_type, checkpoint, records_delivered, blobs_delivered, duplicates_dropped,
    expired_count, last_content_seen, last_delivery_at, last_error_code, last_error_message, last_error_at, held_blobs, updated_at)
    VALUES ('', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
  const insertExpired = db.prepare(`INSERT INTO expired_blobs (tenant, content_type, seq, content_id, content_created, detected_at) VALUES ('', ?, ?, ?, ?, ?)`);
  const insertBlobs = db.prepare(`INSERT INTO delivered_blobs (tenant, content_type, content_id, content_created_ms)
    SELECT '', ?, json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?) WHERE true
    ON CONFLICT (tenant, content_type, content_id) DO NOTHING`);
  const insertIds = db.prepare(`INSERT INTO legacy_record_ids (tenant, content_type, id, seen_at_ms)
    SELECT '', ?, json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?) WHERE true
    ON CONFLICT (tenant, content_type, id) DO NOTHING`);
  const insertPosition = db.prepare('INSERT INTO sink_positions (name, position) VALUES (?, ?)');
  for (const [contentType, s] of states) {
    insertCursor.run(contentType, s.checkpoint ?? null, s.recordsDelivered, s.blobsDelivered, s.duplicatesDropped, s.expiredCount,
      s.lastContentSeen ?? null, s.lastDeliveryAt ?? null, s.lastError?.code ?? null, s.lastError?.message ?? null, s.lastError?.at ?? null,
      s.heldBlobs, s.updatedAt ?? null);
    const kept = s.expired.slice(-expiredKept);
    kept.forEach((e, i) => insertExpired.run(contentType, s.expiredCount - kept.length + i + 1, e.contentId, e.contentCreated, e.detectedAt));
    const blobs = Object.entries(s.delivered).map(([contentId, created]) => [contentId, Date.parse(created)] as const);
    const invalid = blobs.find(([, ms]) => Number.isNaN(ms));
    if (invalid) throw new ConnectorError('STATE_CORRUPT', `${contentType}.json: delivered blob ${invalid[0]} has no valid contentCreated`, { fix: 'restore it from backup, or move it away to start that content type over from --since (records may repeat)' });
    insertBlobs.run(contentType, JSON.stringify(blobs));
    insertIds.run(contentType, JSON.stringify(s.recentIds));
  }
  for (const [name, position] of Object.entries(latestV2(states.values())?.sinkPositions ?? {})) insertPosition.run(name, JSON.stringify(position));
}

/**
 * After the import committed: rename the JSON files out of the way, and drop the previous release's lock and its
 * interrupted saves (`<ContentType>.json.<n>.tmp`). Only in a directory that still holds that release's state
 * files: in any other, a file named `lock` or `*.tmp` is not the connector's, and is left alone.
 */
export async function retireV2Files(dir: string): Promise<void> {
  const names = await namesIn(dir);
  if (!names.some(isV2StateFileName)) return;
  for (const name of names) {
    const path = join(dir, name);
    if (isV2StateFileName(name)) await rename(path, `${path}${migratedSuffix}`);
    else if (name === v2LockFileName || isV2TempFileName(name)) await unlink(path).catch(() => {});
  }
}

function isV2TempFileName(name: string): boolean {
  const match = /^(.+)\.json\.\d+\.tmp$/.exec(name);
  return match !== null && isContentType(match[1]!);
}

/**
 * A read-only view of version-2 files, for `status` on a directory the new release has not run on yet (and, with
 * no files, of a directory that holds no state at all).
 */
export class V2StateView implements StateStore {
  readonly location: string;
  readonly deadLetters: string;
  readonly #states: ReadonlyMap<ContentType, StateFileV2>;

  constructor(location: string, states: ReadonlyMap<ContentType, StateFileV2>) {
    this.location = location;
    this.deadLetters = join(location, deadLetterFileName);
    this.#states = states;
  }

  async cursors(): Promise<Map<ContentType, CursorState>> {
    return new Map([...this.#states].map(([contentType, s]) => [contentType, cursorOfV2(s)]));
  }

  async sinkPositions(): Promise<Record<string, SinkPosition>> {
    return { ...latestV2(this.#states.values())?.sinkPositions };
  }

  async deliveredBlobs(contentType: ContentType, contentIds: readonly string[]): Promise<Set<string>> {
    const delivered = this.#states.get(contentType)?.delivered ?? {};
    return new Set(contentIds.filter((id) => Object.hasOwn(delivered, id)));
  }

  async seenRecords(contentType: ContentType, keys: readonly RecordKey[]): Promise<Set<string>> {
    const seen = new Set(this.#states.get(contentType)?.recentIds.map(([id]) => id));
    return new Set(keys.filter((key) => seen.has(key.id)).map((key) => key.id));
  }

  async commit(): Promise<void> {
    throw new Error(`state ${this.location} is open read-only`);
  }

  async close(): Promise<void> {}
}

function cursorOfV2(s: StateFileV2): CursorState {
  return {
    contentType: s.contentType, checkpoint: s.checkpoint, recordsDelivered: s.recordsDelivered, blobsDelivered: s.blobsDelivered,
    duplicatesDropped: s.duplicatesDropped, expiredCount: s.expiredCount, expired: s.expired.slice(-expiredKept),
    lastContentSeen: s.lastContentSeen, lastDeliveryAt: s.lastDeliveryAt, lastError: s.lastError, heldBlobs: s.heldBlobs, updatedAt: s.updatedAt,
    coveredFrom: undefined, lateBlobs: 0, maxLatenessMs: 0, lastSweepAt: undefined,
  };
}

function latestV2(states: Iterable<StateFileV2>): StateFileV2 | undefined {
  let latest: StateFileV2 | undefined;
  for (const state of states) if (!latest || state.sequence > latest.sequence) latest = state;
  return latest;
}

/** A state file of the previous release, or one retired by the import (`*.migrated-v2`). */
export function isV2FileName(name: string): boolean {
  return isV2StateFileName(name.endsWith(migratedSuffix) ? name.slice(0, -migratedSuffix.length) : name);
}

/** `<ContentType>.json`; not the temp files of an interrupted save, nor anything else. */
function isV2StateFileName(name: string): boolean {
  return name.endsWith('.json') && isContentType(name.slice(0, -'.json'.length));
}

async function namesIn(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}
