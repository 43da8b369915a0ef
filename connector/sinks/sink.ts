import type { Dispatcher } from 'undici';
import type { CloudName } from '../../contract/clouds.ts';
import type { SentinelDestination } from '../config/config.ts';
import type { SinkBatch, SinkCallOptions, SinkPosition } from '../core/records.ts';
import type { TokenSource } from '../http/exchange.ts';

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
  /** Optional: called once before any write, with the position last committed (a file cuts back to it). */
  open?(resumeFrom: SinkPosition | undefined, options?: SinkCallOptions): Promise<void>;
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

/** What a sink writes: the records' own bytes, or OCSF events made from them. */
export type RecordForm = 'raw' | 'ocsf';
/** How an http(s) sink speaks: NDJSON posts, Splunk HEC, or Elasticsearch's _bulk. */
export type HttpProtocol = 'ndjson' | 'hec' | 'bulk';

/**
 * The connector's own identity, for a sink that signs in to Microsoft with it (Sentinel's Logs Ingestion API): the
 * tenant's app and credential, its cloud and CA bundle, and the Sentinel destination its stack outputs name. A run
 * of one tenant has it; a fleet of many (`--tenants`) has no single identity.
 */
export interface SinkIdentity {
  readonly cloud: CloudName;
  /** Extra CA bundle the outputs name (trusted beside the system's roots), as for Microsoft's other endpoints. */
  readonly caFile: string | undefined;
  readonly sentinel: SentinelDestination | undefined;
  /** Access tokens for `audience` (`https://monitor.azure.com`), asked for over `dispatcher`. */
  tokensFor(audience: string, dispatcher: Dispatcher): TokenSource;
}
