/**
 * The rows one commit of a content type changes, worked out once from the cursor as it stands; each store
 * executes the plan with its own statements inside its transaction, so SQLite and PostgreSQL cannot differ in
 * what a commit means.
 */
import type { CollectedType } from '../../contract/content-types.ts';
import { creationSecond, expiredKept, type Commit, type RecordKey } from '../core/commit.ts';
import { cursorColumns, cursorValueColumns, emptyCursorRow, epochMs, nextCursor, type CursorRow } from './cursor-rows.ts';

/** The plan of `commit` for `contentType` of `tenant`, whose cursor row is `current` (undefined before its first commit). */
export function planCommit(current: CursorRow | undefined, tenant: string, contentType: CollectedType, commit: Commit) {
  const cursor = nextCursor(current ?? emptyCursorRow(tenant, contentType), commit);
  const before = Number(current?.expired_count ?? 0);
  const expired = (commit.expired ?? []).map((e, i) => ({ ...e, seq: before + i + 1 }));
  const forgetRecordsBeforeMs = commit.forgetRecordsCreatedBefore === undefined ? undefined : epochMs(commit.forgetRecordsCreatedBefore, 'forgetRecordsCreatedBefore');
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
    ON CONFLICT (tenant, content_type) DO UPDATE SET ${cursorValueColumns.map((column) => `${column} = excluded.${column}`).join(', ')}`;
}
