/** What flows from a source through the pipeline to a sink, and where a sink stands. */
import type { CollectedType } from '../../contract/content-types.ts';

/**
 * One audit record exactly as the Management Activity API returned it: `bytes` is the slice of the blob that
 * holds the record's JSON object, never re-serialized (re-serializing reorders integer-like keys, rewrites
 * `1.0`, escapes and integers above 2^53). `id` and `creationTime` are read from it for the decisions that need
 * them (de-duplication, timestamps), as the strings the API sent; undefined when absent or not a string.
 */
export interface RawRecord {
  readonly id: string | undefined;
  readonly creationTime: string | undefined;
  readonly bytes: Buffer;
}

export interface SinkBatch {
  readonly contentType: CollectedType;
  readonly records: readonly RawRecord[];
}

/**
 * Where a sink stands after a durable write, as plain JSON. The pipeline persists it atomically with the
 * checkpoint and hands the last persisted one back to `open` after a restart, so that a sink which can
 * (the file sink) cuts away whatever it wrote after the last checkpoint: exactly-once across crashes.
 */
export type SinkPosition = string | number | boolean | null | { readonly [key: string]: SinkPosition } | readonly SinkPosition[];

export interface SinkCallOptions {
  readonly abortSignal?: AbortSignal;
  /**
   * A record of the batch this sink can never take (too large for its destination): it is kept with the reason in the
   * tenant's dead letters, committed with the batch, and the batch is acknowledged without it.
   */
  readonly setAside?: (record: RawRecord, reason: string) => void;
}

/**
 * CreationTime is UTC without a zone suffix: epoch milliseconds, undefined when absent or unreadable. A day or time
 * that does not exist (2026-02-30, 24:00) is unreadable: the date parser would roll it over into another day.
 */
export function creationTimeMs(value: unknown): number | undefined {
  if (typeof value !== 'string') return undefined;
  const zoned = /[zZ]|[+-]\d\d:?\d\d$/.test(value);
  const ms = Date.parse(zoned ? value : `${value}Z`);
  if (Number.isNaN(ms)) return undefined;
  const parts = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2}))?/.exec(value);
  if (parts) {
    const [year, month, day] = [Number(parts[1]), Number(parts[2]), Number(parts[3])];
    if (month < 1 || month > 12 || day < 1 || day > new Date(Date.UTC(year, month, 0)).getUTCDate()) return undefined;
    if (parts[4] !== undefined && (Number(parts[4]) > 23 || Number(parts[5]) > 59)) return undefined;
  }
  return ms;
}
