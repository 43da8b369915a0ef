/**
 * Generic HTTP sink: `http://…` or `https://…`.
 * Emits: NDJSON by POST, one record per line, each line the bytes Microsoft sent for the record, unchanged (a
 * record the API pretty-printed across lines is compacted to one, nothing inside its strings changing; see
 * connector/sources/activity-api/content-records.ts); `content-type: application/x-ndjson`, optionally gzip-compressed
 * (`gzip=1`). Each pipeline batch is cut into requests of at most `maxRecords` (500) records and `maxBytes`
 * (1 MiB) of NDJSON (a single larger record goes alone); the time bound is the pipeline's: it hands over a
 * batch as soon as it is complete or its wait is over, and the sink sends it at once, holding nothing back
 * between writes. Headers: `header.<Name>=<value>`, secret ones
 * `headerEnv.<Name>=<VARIABLE>`; a bearer token from the variable named by `tokenEnv` (or the file `tokenFile`).
 * `protocol=hec` and `protocol=bulk` (or, as in earlier releases, `format=hec`, `format=bulk`) switch to the Splunk HEC
 * and Elasticsearch sinks for the same URL; `format=ocsf` sends OCSF events instead of records (see sinks/spec.ts).
 * Delivery: at least once. A batch is acknowledged when every request of it got a 2xx; 408, 429, 5xx and
 * dropped or timed-out connections (`timeoutMs`, 30000) are retried up to `maxAttempts` (5) with backoff and
 * Retry-After, then the batch is rejected and the pipeline sends it again. A collector that gave up on a
 * request after storing part of it may receive those records twice.
 * Buffering: one request body at a time. TLS: `ca` (PEM; replaces the system roots for this sink).
 */
import type { ProxySettings } from '../../http/proxy.ts';
import { z } from 'zod';
import type { ComponentReporter } from '../../observe/telemetry.ts';
import type { Sink } from '../sink.ts';
import type { SinkBatch, SinkCallOptions, SinkPosition } from '../../core/records.ts';
import { ndjson } from '../ndjson.ts';
import { count, headerParameters, secretEnv, secretFile, SinkUrl, text } from '../sink-url.ts';
import { deliveryParameters, HttpBatchSender, judgeStatus, refuseClearTextCredentials, requestOnce } from './batch-sender.ts';

/** The query parameters of an `http(s)://` sink. */
export const httpParameters = (env: NodeJS.ProcessEnv) => z.object({
  ...deliveryParameters(),
  maxRecords: count(500, 1, 1_000_000),
  maxBytes: count(1024 * 1024, 1024, 512 * 1024 * 1024),
  tokenEnv: secretEnv(env),
  tokenFile: secretFile(),
  format: text(),
  ...headerParameters(env),
});

export class HttpSink implements Sink {
  readonly name: string;
  readonly #sender: HttpBatchSender;

  constructor(spec: string, options: { env?: NodeJS.ProcessEnv; telemetry?: ComponentReporter; proxy?: ProxySettings | undefined } = {}) {
    const url = new SinkUrl(spec);
    const parameters = url.parameters(httpParameters(options.env ?? process.env));
    this.name = url.display;
    const token = parameters.tokenEnv ?? parameters.tokenFile;
    const target = new URL(url.url);
    target.search = ''; // the query configures the sink; it is not sent
    refuseClearTextCredentials(target.origin, parameters.insecure, url.display, { tokenEnv: parameters.tokenEnv, tokenFile: parameters.tokenFile, headerEnv: parameters.headerEnv });
    const headers = { 'content-type': 'application/x-ndjson', ...parameters.header, ...parameters.headerEnv, ...(token ? { authorization: `Bearer ${token}` } : {}) };
    this.#sender = new HttpBatchSender(parameters, target.toString(), headers, { proxy: options.proxy, telemetry: options.telemetry, fallbackCode: 'HTTP' });
  }

  /** A HEAD request with the sink's headers: any answer but a refused credential or a server error will do. */
  async check(options: SinkCallOptions = {}): Promise<string> {
    const answer = await requestOnce(this.#sender.target, 'HEAD', options.abortSignal);
    if (answer.status === 401 || answer.status === 403 || answer.status >= 500) {
      throw judgeStatus(new URL(this.#sender.target.url).host, answer)!; // an error for any status outside 2xx
    }
    return `reachable (HTTP ${answer.status} to HEAD)`;
  }

  async write(batch: SinkBatch, options: { abortSignal?: AbortSignal } = {}): Promise<SinkPosition | undefined> {
    await this.#sender.write(batch.records.map((record) => record.bytes), async (chunk) => {
      const body = ndjson(chunk);
      await this.#sender.deliver(body, (answer) => judgeStatus(this.name, answer), options.abortSignal);
      this.#sender.sent(chunk.length, body.length);
    });
    return undefined;
  }

  async close(): Promise<void> {
    await this.#sender.close();
  }
}
