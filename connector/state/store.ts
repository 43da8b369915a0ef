/**
 * The state store: where each content type stands, what was delivered, and where each sink stands, behind one
 * interface. The pipeline is its only writer and hands it immutable commits; the store applies each commit in
 * one transaction (all of it, or after a crash none of it). The embedded default is SQLite (sqlite-store.ts);
 * the interface keeps to what a PostgreSQL store can implement the same way (rows keyed by content type and by
 * sink name, set-membership queries, one transaction per commit), so a fleet store can follow.
 */
import type { ContentType } from '../api/content-types.ts';
import type { SinkPosition } from '../sinks/sink.ts';

export interface ExpiredContent {
  readonly contentId: string;
  readonly contentCreated: string;
  readonly detectedAt: string;
}

export interface LastError {
  readonly code: string;
  readonly message: string;
  readonly at: string;
}

/** Where one content type stands, as the pipeline resumes from it and `status` reports it. Holds no secret. */
export interface CursorState {
  readonly contentType: ContentType;
  /** Every blob listed with contentCreated before this instant was delivered (or recorded as expired). */
  readonly checkpoint: string | undefined;
  readonly recordsDelivered: number;
  readonly blobsDelivered: number;
  readonly duplicatesDropped: number;
  readonly expiredCount: number;
  /** The latest expired blobs, newest last (at most `expiredKept`). */
  readonly expired: readonly ExpiredContent[];
  /** Newest contentCreated among delivered blobs. */
  readonly lastContentSeen: string | undefined;
  readonly lastDeliveryAt: string | undefined;
  /** The last failure of a pass; cleared by a clean pass. */
  readonly lastError: LastError | undefined;
  /** Blobs whose fetch failed in the last pass and will be fetched again (they hold the checkpoint). */
  readonly heldBlobs: number;
  readonly updatedAt: string | undefined;
}

/** How many expired blobs a cursor lists (the count keeps growing). */
export const expiredKept = 50;

/**
 * What identifies a delivered record for de-duplication: its `Id` and its `CreationTime` (a repeated record is
 * the same record, time included). Stores key the Ids by time first: a batch's records happened within hours of
 * each other, so a commit writes into one small region of the index instead of all over it, whatever its size.
 */
export interface RecordKey {
  readonly id: string;
  readonly creationTime: string | undefined;
}

/**
 * A record's CreationTime as whole epoch seconds (UTC when it has no zone, as the API writes it); 0 when it has
 * none or it cannot be read. Every store keys record Ids by this, so the same record always finds its entry.
 */
export function creationSecond(creationTime: string | undefined): number {
  if (creationTime === undefined) return 0;
  const zoned = /(?:[zZ]|[+-]\d\d:?\d\d)$/.test(creationTime);
  const ms = Date.parse(zoned ? creationTime : `${creationTime}Z`);
  return Number.isNaN(ms) ? 0 : Math.floor(ms / 1000);
}

/**
 * One commit, applied atomically. Everything is optional except `at`: a commit may only record sink positions
 * (before the first write), only an error, or a whole delivered batch. Counters are increments.
 */
export interface Commit {
  /** The content type this commit moves; absent for a commit of sink positions alone. */
  readonly contentType?: ContentType;
  /** When the commit was made (ISO UTC): becomes updatedAt, and lastDeliveryAt when records > 0. */
  readonly at: string;
  /** The new checkpoint, when it moved. */
  readonly checkpoint?: string;
  /** Blobs now delivered (or expired): never delivered again while their contentCreated is kept. */
  readonly blobs?: ReadonlyArray<{ readonly contentId: string; readonly contentCreated: string }>;
  /** Blobs found expired (AF20051), also listed in `blobs`. */
  readonly expired?: readonly ExpiredContent[];
  /** Records now delivered: never delivered again while remembered. */
  readonly recordKeys?: readonly RecordKey[];
  readonly records?: number;
  readonly duplicates?: number;
  /** undefined: unchanged; null: cleared. */
  readonly lastError?: LastError | null;
  readonly heldBlobs?: number;
  /** Each sink's position after this commit's writes (merged into the stored positions by name). */
  readonly sinkPositions?: Readonly<Record<string, SinkPosition>>;
  /** Forget delivered blobs of this content type whose contentCreated is before this instant. */
  readonly forgetBlobsBefore?: string;
  /** Forget delivered records of this content type whose CreationTime is before this instant. */
  readonly forgetRecordsCreatedBefore?: string;
}

export interface StateStore {
  /** For logs and status: where the state lives (a directory, a database without credentials). */
  readonly location: string;
  /** Every content type's cursor that has ever been committed. */
  cursors(): Promise<Map<ContentType, CursorState>>;
  /** The sink positions of the latest commit, by sink name. */
  sinkPositions(): Promise<Record<string, SinkPosition>>;
  /** Which of `contentIds` were delivered (and are still remembered) for this content type. */
  deliveredBlobs(contentType: ContentType, contentIds: readonly string[]): Promise<Set<string>>;
  /** The Ids of those of `keys` that were delivered (and are still remembered) for this content type. */
  seenRecords(contentType: ContentType, keys: readonly RecordKey[]): Promise<Set<string>>;
  /** Applies the commit in one durable transaction: resolved means a crash afterwards still finds it. */
  commit(commit: Commit): Promise<void>;
  close(): Promise<void>;
}
