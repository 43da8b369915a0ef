/**
 * Stdout sink: `stdout` (the default).
 * Delivery: at least once. A batch is acknowledged when the stream's write callback has fired, and after
 * 'drain' when the reader is slow (the backpressure); a crash after that may replay the records written
 * since the last saved checkpoint (stdout cannot be cut back). Buffering: none beyond the batch.
 * Emits: NDJSON, one record per line, each line the bytes Microsoft sent for the record, unchanged (a record
 * the API pretty-printed across lines is compacted to one, nothing inside its strings changing; see
 * connector/sources/activity-api/content-records.ts). Logs never go to stdout. Position: none.
 */
import type { Writable } from 'node:stream';
import type { ComponentReporter } from '../observe/telemetry.ts';
import type { Sink } from './sink.ts';
import type { SinkBatch, SinkPosition } from '../core/records.ts';
import { ndjson } from './ndjson.ts';

export class StdoutSink implements Sink {
  readonly name = 'stdout';
  readonly #stream: Writable;
  readonly #telemetry: ComponentReporter | undefined;

  constructor(options: { stream?: Writable; telemetry?: ComponentReporter } = {}) {
    this.#stream = options.stream ?? process.stdout;
    this.#telemetry = options.telemetry;
  }

  async write(batch: SinkBatch): Promise<SinkPosition | undefined> {
    const lines = ndjson(batch.records.map((record) => record.bytes));
    let ready = true;
    const accepted = new Promise<void>((resolve, reject) => {
      ready = this.#stream.write(lines, (error) => (error ? reject(error) : resolve()));
    });
    // Past the high-water mark: wait for 'drain' too, so a slow reader slows the pipeline instead of filling memory.
    const drained = ready ? undefined : new Promise<void>((resolve) => this.#stream.once('drain', () => resolve()));
    await accepted;
    if (drained) await drained;
    this.#telemetry?.sent(batch.records.length, lines.length);
    return undefined;
  }

  async close(): Promise<void> {}
}
