/**
 * Generic HTTP sink: `http://…` or `https://…`.
 * Emits: NDJSON (one record per line, exactly as the API returned it) by POST, `content-type:
 * application/x-ndjson`, optionally gzip-compressed (`gzip=1`). Each pipeline batch is cut into requests of at
 * most `maxRecords` (500) records and `maxBytes` (1 MiB) of NDJSON (a single larger record goes alone); the
 * time bound is the pipeline's: it hands over a batch as soon as it is complete or its wait is over, and the
 * sink sends it at once, holding nothing back between writes. Headers: `header.<Name>=<value>`, secret ones
 * `headerEnv.<Name>=<VARIABLE>`; a bearer token from the variable named by `tokenEnv` (or the file `tokenFile`).
 * `format=hec` and `format=bulk` switch to the Splunk HEC and Elasticsearch sinks for the same URL.
 * Delivery: at least once. A batch is acknowledged when every request of it got a 2xx; 408, 429, 5xx and
 * dropped or timed-out connections (`timeoutMs`, 30000) are retried up to `maxAttempts` (5) with backoff and
 * Retry-After, then the batch is rejected and the pipeline sends it again. A collector that gave up on a
 * request after storing part of it may receive those records twice.
 * Buffering: one request body at a time. TLS: `ca` (PEM; replaces the system roots for this sink).
 */
import { ConnectorError } from '../errors.ts';
import type { ComponentReporter } from '../status/telemetry.ts';
import type { AuditRecord, Sink, SinkBatch, SinkPosition } from './sink.ts';
import { SinkUrl } from './sink-url.ts';
import { deliver, httpTarget, judgeStatus, type HttpTarget, sendingErrorReporter } from './http-delivery.ts';

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
  readonly #reportError: (error: ConnectorError) => void;

  constructor(spec: string, options: { env?: NodeJS.ProcessEnv; telemetry?: ComponentReporter } = {}) {
    const url = new SinkUrl(spec, options.env ?? process.env, ['gzip', 'maxRecords', 'maxBytes', 'timeoutMs', 'maxAttempts', 'tokenEnv', 'tokenFile', 'ca', 'format', 'header.*', 'headerEnv.*']);
    this.name = url.display;
    const token = url.secret('token');
    const target = new URL(spec);
    target.search = ''; // the query configures the sink; it is not sent
    this.#target = httpTarget(url, target.toString(), { 'content-type': 'application/x-ndjson', ...url.headers(), ...(token ? { authorization: `Bearer ${token}` } : {}) });
    this.#maxRecords = url.number('maxRecords', 500, 1, 1_000_000);
    this.#maxBytes = url.number('maxBytes', 1024 * 1024, 1024, 512 * 1024 * 1024);
    this.#telemetry = options.telemetry;
    this.#reportError = sendingErrorReporter(options.telemetry, 'HTTP');
  }

  async open(): Promise<void> {}

  async write(batch: SinkBatch, options: { abortSignal?: AbortSignal } = {}): Promise<SinkPosition | undefined> {
    const lines = batch.records.map((record: AuditRecord) => JSON.stringify(record));
    for (const chunk of chunks(lines, this.#maxRecords, this.#maxBytes)) {
      const body = chunk.join('\n') + '\n';
      try {
        await deliver(this.#target, body, (answer) => judgeStatus(this.name, answer), { abortSignal: options.abortSignal, onRetry: this.#reportError });
      } catch (error) {
        this.#reportError(error as ConnectorError);
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
