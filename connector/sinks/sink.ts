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
}

/**
 * The contract every sink implements (Vector's end-to-end acknowledgement, at our scale):
 * - `write` resolves only once the destination has durably accepted every record of the batch; that
 *   resolution is the acknowledgement that lets the checkpoint move past them. It rejects (with a
 *   ConnectorError) when it cannot; the pipeline then holds the checkpoint and retries the same batch.
 * - Writes are called one at a time per sink (the pipeline awaits each), which is the backpressure.
 * - A sink reports bytes/records sent and errors through the Telemetry it is given.
 * - A sink keeps no reference to a record's `bytes` once `write` settled: they are views of buffers that are
 *   reused for later content. Whatever it keeps (a replay window) it copies.
 */
export interface Sink {
  /** For logs and status: the spec with any secret removed, e.g. `file:/var/log/o365.ndjson`. */
  readonly name: string;
  open(resumeFrom: SinkPosition | undefined, options?: SinkCallOptions): Promise<void>;
  /**
   * Optional: where the sink stands right after `open`. A sink that can cut back implements it so that the
   * pipeline records the starting position before the first write; without it a crash during the very first
   * batch would leave that batch's bytes (perhaps half a line) in front of its re-delivery.
   */
  position?(): SinkPosition | undefined;
  write(batch: SinkBatch, options?: SinkCallOptions): Promise<SinkPosition | undefined>;
  /**
   * Optional, with `position`: cuts back to `position`, one this run acknowledged earlier, removing what was written
   * after it. A fleet worker whose commits stopped reaching the state (its session was lost) calls it with the last
   * committed position before any unit runs again, since the records after it will be delivered again.
   */
  rewind?(position: SinkPosition | undefined): Promise<void>;
  close(): Promise<void>;
  /**
   * Optional: tries the destination the way writes will use it, without writing a record (file appendable and
   * fsync-able, receiver reachable, TLS verified, credentials and write permission accepted). Resolves with what
   * was verified, in words; rejects with a ConnectorError naming the fix. `test` runs it for every sink, and `run`
   * before the first batch, so that a bad token fails at start instead of at the first batch.
   */
  check?(options?: SinkCallOptions): Promise<string>;
}
