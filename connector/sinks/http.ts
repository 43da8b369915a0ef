/**
 * Generic HTTP sink: `http://…` or `https://…`.
 * Emits: NDJSON (one record per line, as the API returned it) by POST, optionally gzip-compressed
 * (`gzip=1`), in requests bounded by `maxRecords` (500) and `maxBytes` (1 MiB); custom headers as
 * `header.<Name>=<value>`; a bearer token from the environment variable named by `tokenEnv` (or `tokenFile`).
 * `format=hec` and `format=bulk` switch to the Splunk HEC and Elasticsearch sinks for the same URL.
 * Delivery: at least once. A batch is acknowledged when every request of it got a 2xx; 429/5xx and dropped
 * connections are retried (Retry-After honoured), then the batch is rejected and the pipeline retries it.
 * Buffering: one request body at a time. TLS: `ca` file; verification always on.
 */
import { ConnectorError } from '../errors.ts';
import type { ComponentReporter } from '../status/telemetry.ts';
import type { AuditRecord, Sink, SinkBatch, SinkPosition } from './sink.ts';
import { SinkUrl } from './sink-url.ts';
import { httpTarget, postWithRetry, type HttpTarget } from './http-delivery.ts';

/** Splits records into chunks bounded by count and by serialized size. */
export function* chunks(lines: readonly string[], maxRecords: number, maxBytes: number): Generator<string[]> {
  let chunk: string[] = [];
  let bytes = 0;
  for (const line of lines) {
    const size = Buffer.byteLength(line) + 1;
    if (chunk.length > 0 && (chunk.length >= maxRecords || bytes + size > maxBytes)) {
      yield chunk;
      chunk = [];
      bytes = 0;
    }
    chunk.push(line);
    bytes += size;
  }
  if (chunk.length > 0) yield chunk;
}

export class HttpSink implements Sink {
  readonly name: string;
  readonly #target: HttpTarget;
  readonly #maxRecords: number;
  readonly #maxBytes: number;
  readonly #telemetry: ComponentReporter | undefined;

  constructor(spec: string, options: { env?: NodeJS.ProcessEnv; telemetry?: ComponentReporter } = {}) {
    const url = new SinkUrl(spec, options.env ?? process.env, ['gzip', 'maxRecords', 'maxBytes', 'timeoutMs', 'maxAttempts', 'tokenEnv', 'tokenFile', 'ca', 'format']);
    this.name = url.display;
    const token = url.secret('token');
    const target = new URL(spec);
    target.search = ''; // the query configures the sink; it is not sent
    this.#target = httpTarget(url, target.toString(), { 'content-type': 'application/x-ndjson', ...url.headers(), ...(token ? { authorization: `Bearer ${token}` } : {}) });
    this.#maxRecords = url.number('maxRecords', 500, 1, 1_000_000);
    this.#maxBytes = url.number('maxBytes', 1024 * 1024, 1024, 512 * 1024 * 1024);
    this.#telemetry = options.telemetry;
  }

  async open(): Promise<void> {}

  async write(batch: SinkBatch, options: { abortSignal?: AbortSignal } = {}): Promise<SinkPosition | undefined> {
    const lines = batch.records.map((record: AuditRecord) => JSON.stringify(record));
    for (const chunk of chunks(lines, this.#maxRecords, this.#maxBytes)) {
      const body = chunk.join('\n') + '\n';
      try {
        const answer = await postWithRetry(this.#target, body, options.abortSignal);
        if (answer.status >= 300) {
          throw new ConnectorError(`HTTP${answer.status}`, `${this.name} refused the batch with HTTP ${answer.status}: ${answer.text.slice(0, 200)}`, {
            fix: answer.status === 401 || answer.status === 403 ? 'check the token named by tokenEnv' : 'check the collector\'s URL and what it accepts',
          });
        }
      } catch (error) {
        this.#telemetry?.error({ stage: 'sending', code: (error as ConnectorError).code ?? 'HTTP', message: (error as Error).message, discarded: 0 });
        throw error;
      }
      this.#telemetry?.sent(chunk.length, Buffer.byteLength(body));
    }
    return undefined;
  }

  async close(): Promise<void> {
    await this.#target.agent.close();
  }
}
