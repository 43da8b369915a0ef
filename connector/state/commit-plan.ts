/**
 * The rows one commit of a content type changes, worked out once from the cursor as it stands; each store
 * executes the plan with its own statements inside its transaction, so SQLite and PostgreSQL cannot differ in
 * what a commit means (how the cursor moves, what is added and what is forgotten).
 */
import type { CollectedType } from '../../contract/content-types.ts';
import { creationSecond, expiredKept, type Commit, type RecordKey } from '../core/commit.ts';
import { applyHistoryChange, keepRecordsFrom, readHistory, type HistoryState } from '../core/history.ts';
import { cursorColumns, type CursorRow } from './cursor-rows.ts';

/** The plan of `commit` for `contentType` of `tenant`, whose cursor row is `current` (undefined before its first commit). */
export function planCommit(current: CursorRow | undefined, tenant: string, contentType: CollectedType, commit: Commit) {
  const cursor = nextCursor(current ?? emptyCursorRow(tenant, contentType), commit);
  const before = Number(current?.expired_count ?? 0);
  const expired = (commit.expired ?? []).map((e, i) => ({ ...e, seq: before + i + 1 }));
  const forgetRecordsBeforeMs = forgetRecordsBefore(commit, readHistory(cursor.history));
  return {
    /** The cursor row after the commit, written whole: the values of upsertCursorSql's placeholders. */
    cursor: cursorColumns.map((column) => cursor[column]),
    /** Blobs (delivered and expired) as [contentId, contentCreated ms], one per blob: a repeated one keeps its last time. */
    blobs: [...new Map((commit.blobs ?? []).map((blob) => [blob.contentId, epochMs(blob.contentCreated, 'blobs[].contentCreated')] as const))],
    /** Expired blobs with their sequence numbers; after they are added, rows up to trimExpiredThrough go (`expiredKept` stay). */
    expired,
    trimExpiredThrough: cursor.expired_count - expiredKept,
    /** Delivered records as [CreationTime second, Id]. */
    recordKeys: recordKeyPairs(commit.recordKeys ?? []),
    setAside: commit.setAside ?? [],
    /** Bounds of what is forgotten, after this commit's own rows are in: record rows keep whole seconds, SQLite's legacy Ids ms. */
    forgetBlobsBeforeMs: commit.forgetBlobsBefore === undefined ? undefined : epochMs(commit.forgetBlobsBefore, 'forgetBlobsBefore'),
    forgetRecordsBeforeMs,
    forgetRecordsBeforeSecond: forgetRecordsBeforeMs === undefined ? undefined : Math.floor(forgetRecordsBeforeMs / 1000),
  };
}

/** Record keys as the stores keep them: [CreationTime second, Id]. */
export function recordKeyPairs(keys: readonly RecordKey[]): Array<[number, string]> {
  return keys.map((key) => [creationSecond(key.creationTime), key.id]);
}

/** The statement that writes a plan's cursor row, its i-th value (from 0) at `placeholder(i)`. */
export function upsertCursorSql(placeholder: (i: number) => string): string {
  return `INSERT INTO cursors (${cursorColumns.join(', ')}) VALUES (${cursorColumns.map((_, i) => placeholder(i)).join(', ')})
    ON CONFLICT (tenant, content_type) DO UPDATE SET ${cursorColumns.slice(2).map((column) => `${column} = excluded.${column}`).join(', ')}`;
}

function emptyCursorRow(tenant: string, contentType: CollectedType): CursorRow {
  return {
    tenant, content_type: contentType, checkpoint: null, records_delivered: 0, blobs_delivered: 0, duplicates_dropped: 0, expired_count: 0,
    last_content_seen: null, last_delivery_at: null, last_error_code: null, last_error_message: null, last_error_at: null, held_blobs: 0, updated_at: null,
    covered_from: null, late_blobs: 0, max_lateness_ms: 0, last_sweep_at: null, service_health: null, api_rate: null, history: null,
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
    service_health: commit.serviceHealth === undefined ? row.service_health ?? null : JSON.stringify(commit.serviceHealth),
    api_rate: commit.apiRate === undefined ? row.api_rate ?? null : JSON.stringify(commit.apiRate),
    history: commit.history === undefined ? row.history ?? null : JSON.stringify(applyHistoryChange(readHistory(row.history), commit.history, commit.at)),
  };
}

/**
 * Where forgetting delivered records stops: as the commit asks, but never inside the window of a history query being
 * paged, which a restart may read again from its first page (its repeats are then dropped by these keys).
 */
function forgetRecordsBefore(commit: Commit, history: HistoryState | undefined): number | undefined {
  if (commit.forgetRecordsCreatedBefore === undefined) return undefined;
  const asked = epochMs(commit.forgetRecordsCreatedBefore, 'forgetRecordsCreatedBefore');
  const keep = keepRecordsFrom(history);
  return keep === undefined ? asked : Math.min(asked, keep);
}

function epochMs(iso: string, field: string): number {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new TypeError(`commit.${field} is not a timestamp: ${iso}`);
  return ms;
}
