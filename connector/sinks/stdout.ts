/**
 * Stdout sink: `stdout` (the default).
 * Delivery: at least once. A batch is acknowledged when the stream has accepted it (after 'drain' when the
 * reader is slow, which is the backpressure); a crash after that may replay the records of the last
 * unsaved checkpoint. Buffering: none beyond the batch. Logs never go to stdout.
 */
import type { Writable } from 'node:stream';
import type { ComponentReporter } from '../status/telemetry.ts';
import type { Sink, SinkBatch, SinkPosition } from './sink.ts';

export class StdoutSink implements Sink {
  readonly name = 'stdout';
  readonly #stream: Writable;
  readonly #telemetry: ComponentReporter | undefined;

  constructor(options: { stream?: Writable; telemetry?: ComponentReporter } = {}) {
    this.#stream = options.stream ?? process.stdout;
    this.#telemetry = options.telemetry;
  }

  async open(): Promise<void> {}

  async write(batch: SinkBatch): Promise<SinkPosition | undefined> {
    let text = '';
    for (const record of batch.records) text += JSON.stringify(record) + '\n';
    await new Promise<void>((resolve, reject) => {
      this.#stream.write(text, (error) => (error ? reject(error) : resolve()));
    });
    this.#telemetry?.sent(batch.records.length, Buffer.byteLength(text));
    return undefined;
  }

  async close(): Promise<void> {}
}
