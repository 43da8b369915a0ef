/**
 * The vocabulary of a commit: where a unit (one content type of one tenant) stands, and the immutable commit
 * that moves it. The pipeline makes commits; the stores (state/) apply them; status and metrics read cursors.
 */
import type { CollectedType } from '../../contract/content-types.ts';
import type { HistoryChange, HistoryState } from './history.ts';
import type { SinkPosition } from './records.ts';

/** Where a tenant's request rate stands (the adaptive budget of request-budget.ts). */
export interface ApiRate {
  /** Requests a minute the connector asks now. */
  readonly perMinute: number;
  readonly ceilingPerMinute: number;
  /** The rate the service took when it last throttled (AF429); absent while it never has. */
  readonly learnedPerMinute?: number;
  /** AF429 answers since the start. */
  readonly throttled: number;
  /** An AF429 came back within the last few minutes. */
  readonly throttledNow: boolean;
}

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
  readonly contentType: CollectedType;
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
  /** The start of the first window ever listed: sweeps cover from here (within the API's 7 days). */
  readonly coveredFrom: string | undefined;
  /** Blobs a sweep found after their window was listed, and the largest lateness among them (discovery - contentCreated). */
  readonly lateBlobs: number;
  readonly maxLatenessMs: number;
  /** When the last sweep over the whole covered range completed (every window listed). */
  readonly lastSweepAt: string | undefined;
  /** ServiceHealth only: every service's health as last sampled from Microsoft Graph. */
  readonly serviceHealth?: ServiceHealthSample | undefined;
  /** Where the tenant's request rate stood at this unit's last commit. */
  readonly apiRate?: ApiRateSample | undefined;
  /** Audit content types: the history beyond the API's 7 days, read from the audit search. */
  readonly history?: HistoryState | undefined;
}

/** The tenant's request rate (the adaptive budget) as sampled at `at`. */
export interface ApiRateSample extends ApiRate {
  readonly at: string;
}

/** Microsoft Graph's health overview of every service (`healthOverviews`), as sampled at `at`. */
export interface ServiceHealthSample {
  readonly at: string;
  readonly services: ReadonlyArray<{ readonly service: string; readonly status: string }>;
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
  if (creationTime.length === 19) {
    // The API's own form, `YYYY-MM-DDTHH:MM:SS` in UTC, read without the date parser (it runs once per record).
    const seconds = plainUtcSeconds(creationTime);
    if (seconds !== undefined) return seconds;
  }
  const zoned = /(?:[zZ]|[+-]\d\d:?\d\d)$/.test(creationTime);
  const ms = Date.parse(zoned ? creationTime : `${creationTime}Z`);
  return Number.isNaN(ms) ? 0 : Math.floor(ms / 1000);
}

/** An element of a content blob that is not an audit record (not a JSON object with a string Id). */
export interface SetAsideRecord {
  readonly contentId: string;
  /** Its position in the blob's array, from 0. */
  readonly index: number;
  readonly reason: string;
  /** Its exact bytes. */
  readonly bytes: Buffer;
}

/**
 * One commit, applied atomically. Everything is optional except `at`: a commit may only record sink positions
 * (before the first write), only an error, or a whole delivered batch. Counters are increments.
 */
export interface Commit {
  /** The content type this commit moves; absent for a commit of sink positions alone. */
  readonly contentType?: CollectedType;
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
  /** Where the state's coverage begins (kept from the first commit that gives it). */
  readonly coveredFrom?: string;
  /** Blobs of this commit that a sweep found late, with how late (ms). */
  readonly late?: ReadonlyArray<{ readonly contentId: string; readonly latenessMs: number }>;
  /** A sweep over the whole covered range completed at this time. */
  readonly sweptAt?: string;
  /** Elements of this commit's blobs that are not audit records: kept apart (the dead-letter file), never delivered. */
  readonly setAside?: readonly SetAsideRecord[];
  /** Forget delivered blobs of this content type whose contentCreated is before this instant. */
  readonly forgetBlobsBefore?: string;
  /** Forget delivered records of this content type whose CreationTime is before this instant. */
  readonly forgetRecordsCreatedBefore?: string;
  /** ServiceHealth only: the health overview just sampled (replaces the stored one). */
  readonly serviceHealth?: ServiceHealthSample;
  /** The tenant's request rate now (replaces the stored one). */
  readonly apiRate?: ApiRateSample;
  /** Audit content types: what changed in the history beyond the API's 7 days (applied to the stored state). */
  readonly history?: HistoryChange;
}

function plainUtcSeconds(text: string): number | undefined {
  const digit = (at: number) => text.charCodeAt(at) - 48;
  const number = (from: number, length: number) => {
    let value = 0;
    for (let i = from; i < from + length; i += 1) {
      const d = digit(i);
      if (d < 0 || d > 9) return Number.NaN;
      value = value * 10 + d;
    }
    return value;
  };
  if (text[4] !== '-' || text[7] !== '-' || text[10] !== 'T' || text[13] !== ':' || text[16] !== ':') return undefined;
  const [year, month, day, hour, minute, second] = [number(0, 4), number(5, 2), number(8, 2), number(11, 2), number(14, 2), number(17, 2)];
  if (!(month >= 1 && month <= 12 && day >= 1 && day <= 31 && hour <= 23 && minute <= 59 && second <= 59)) return undefined;
  const ms = Date.UTC(year, month - 1, day, hour, minute, second);
  // A day past the month's end (Feb 30) is left to the date parser, which decides as it always did.
  return new Date(ms).getUTCDate() === day ? Math.floor(ms / 1000) : undefined;
}

/** What one worker collects on its own: one content type of one tenant. */
export interface UnitKey {
  /** The tenant id (lower-case GUID). */
  readonly tenant: string;
  readonly contentType: CollectedType;
}

export function unitName(unit: UnitKey): string {
  return `${unit.tenant}/${unit.contentType}`;
}
