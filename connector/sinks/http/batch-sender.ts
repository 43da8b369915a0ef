/**
 * What the three HTTP sinks share: the target (URL, headers, connection pool), the request limits, the write loop
 * that cuts a batch into requests, and one POST with retries. The sink's judge reads each answer (HTTP status, and
 * the service's own codes such as HEC's `{"code":9}`) and says whether it was accepted, worth repeating, or
 * refused for good. Repeatable answers and dropped, refused or timed-out connections are retried a bounded
 * number of times, honouring Retry-After; then the error is thrown, still marked retryable, so the pipeline
 * holds the checkpoint and sends the same batch again later. Every response body is read to the end.
 */
import { promisify } from 'node:util';
import type { z } from 'zod';
import { gzip as gzipCallback } from 'node:zlib';
import { Agent, request, type Dispatcher } from 'undici';
import { proxyDispatcher } from '../../http/http-agent.ts';
import type { ProxySettings } from '../../http/proxy.ts';
import { ConfigError, ConnectorError } from '../../core/errors.ts';
import { judgeByError, retry, retryAfterMs, type RetryPolicyOptions } from '../../http/retry.ts';
import type { ComponentReporter } from '../../observe/telemetry.ts';
import { count, fileText, flag } from '../sink-url.ts';
import { sinkTransportError } from '../../http/transport-errors.ts';

const gzip = promisify(gzipCallback);

export interface HttpTarget {
  /** Where requests go; for messages only its host is shown. */
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly gzip: boolean;
  readonly maxAttempts: number;
  readonly agent: Dispatcher;
}

export interface HttpAnswer {
  readonly status: number;
  readonly text: string;
  readonly retryAfter: string | undefined;
}

/** Undefined when the destination accepted the request, otherwise the error (retryable or not). */
export type AnswerJudge = (answer: HttpAnswer) => ConnectorError | undefined;

/** The parameters every HTTP-based sink shares, for its schema: `gzip`, `timeoutMs`, `maxAttempts`, `ca`. */
export const deliveryParameters = (defaultTimeoutMs = 30_000) => ({
  gzip: flag(),
  insecure: flag(),
  proxy: flag(),
  timeoutMs: count(defaultTimeoutMs, 100, 600_000),
  maxAttempts: count(5, 1, 100),
  ca: fileText(),
});

/** Those parameters as read (`proxy=1`: through the configured proxy). */
type DeliveryParameters = z.infer<z.ZodObject<ReturnType<typeof deliveryParameters>>>;

/**
 * A credential sent over plain http crosses the network readable by anyone on the path: refused unless the spec
 * says `insecure=1` (a trusted path, e.g. a receiver on the same host).
 */
export function refuseClearTextCredentials(origin: string, insecure: boolean, sinkName: string, credentials: Record<string, unknown>): void {
  if (!origin.startsWith('http:') || insecure) return;
  const given = Object.entries(credentials).filter(([, value]) => value !== undefined && !(typeof value === 'object' && value !== null && Object.keys(value).length === 0)).map(([name]) => name);
  if (given.length === 0) return;
  throw new ConfigError('--sink', `${sinkName}: ${given.join(', ')} would cross the network in clear text over http`, 'use https (drop tls=0, or give an https:// URL), or add insecure=1 if the network path to the receiver is trusted');
}

/** The judgement by HTTP status alone, for destinations without codes of their own. */
export function judgeStatus(destination: string, answer: HttpAnswer): ConnectorError | undefined {
  const { status } = answer;
  if (status >= 200 && status < 300) return undefined;
  const detail = answer.text.replace(/\s+/g, ' ').trim().slice(0, 200);
  const message = `${destination} answered HTTP ${status}${detail ? `: ${detail}` : ''}`;
  if (status === 408 || status === 429 || status >= 500) {
    return new ConnectorError(`HTTP${status}`, message, { retryable: true, fix: 'none needed if it passes: the collector is busy or failing, so the checkpoint waits and the batch is sent again' });
  }
  const fix = status === 401 || status === 403 ? 'check the credential named by tokenEnv/apiKeyEnv (or a headerEnv.* variable) and what it may write to'
    : status === 413 ? 'lower maxBytes or maxRecords in the sink spec below the collector\'s request size limit'
    : status === 404 || status === 405 || (status >= 300 && status < 400) ? 'check the sink URL: it must be the collector\'s ingest endpoint itself (redirects are not followed)'
    : 'check what the collector accepts (its logs name the reason)';
  return new ConnectorError(`HTTP${status}`, message, { fix });
}

/** One request (`HEAD` without a body): the answer, read to the end, or the transport failure as a ConnectorError. */
export async function requestOnce(target: HttpTarget, method: 'HEAD' | 'POST', signal?: AbortSignal, body?: Buffer, headers = target.headers): Promise<HttpAnswer> {
  try {
    const response = await request(target.url, { method, dispatcher: target.agent, headers, ...(body !== undefined ? { body } : {}), ...(signal ? { signal } : {}) });
    const header = response.headers['retry-after'];
    return { status: response.statusCode, text: await response.body.text(), retryAfter: Array.isArray(header) ? header[0] : header };
  } catch (cause) {
    if (signal?.aborted) throw cause;
    throw sinkTransportError(cause, new URL(target.url).host);
  }
}

const backoff: RetryPolicyOptions = { maxAttempts: Number.POSITIVE_INFINITY, baseDelayMs: 250, maxDelayMs: 30_000, maxRetryAfterMs: 60_000 };

/**
 * POSTs `body` (bytes as they are, text as UTF-8) until the judge accepts an answer; resolves with that answer.
 * `onRetry` is told of each failed attempt that will be repeated (for telemetry).
 */
export async function deliver(target: HttpTarget, body: Buffer | string, judge: AnswerJudge, signal?: AbortSignal, onRetry?: (error: ConnectorError) => void): Promise<HttpAnswer> {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const payload = target.gzip ? await gzip(bytes) : bytes;
  const headers = { ...target.headers, ...(target.gzip ? { 'content-encoding': 'gzip' } : {}) };
  let retryAfter: number | undefined;
  return retry(async () => {
    retryAfter = undefined;
    const answer = await requestOnce(target, 'POST', signal, payload, headers);
    const error = judge(answer);
    if (!error) return answer;
    retryAfter = retryAfterMs(answer.retryAfter);
    throw error;
  }, {
    policy: { ...backoff, maxAttempts: target.maxAttempts },
    judge: (error) => ({ retry: judgeByError(error).retry, retryAfterMs: retryAfter }),
    signal,
    ...(onRetry ? { onRetry: ({ error }) => onRetry(error) } : {}),
  });
}

/** Splits lines into chunks bounded by count and by size (each line counted with its line feed). */
function* chunks(lines: readonly Buffer[], maxRecords: number, maxBytes: number): Generator<Buffer[]> {
  let chunk: Buffer[] = [];
  let bytes = 0;
  for (const line of lines) {
    const size = line.length + 1;
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

/** One HTTP sink's target, limits and telemetry, and the loop that sends a batch as requests within the limits. */
export class HttpBatchSender {
  readonly target: HttpTarget;
  readonly #limits: { readonly maxRecords: number; readonly maxBytes: number };
  readonly #telemetry: ComponentReporter | undefined;
  readonly #fallbackCode: string;

  /**
   * Sinks go direct (they are usually inside the network): through the proxy only when the spec says `proxy=1`, and
   * then not to a host its NO_PROXY names. `fallbackCode` names errors that are not the connector's own (an abort, a bug).
   */
  constructor(parameters: DeliveryParameters & { readonly maxRecords: number; readonly maxBytes: number }, endpoint: string, headers: Record<string, string>,
    options: { proxy?: ProxySettings | undefined; telemetry?: ComponentReporter | undefined; fallbackCode: string }) {
    const { gzip, timeoutMs, maxAttempts, ca, proxy } = parameters;
    if (proxy && !options.proxy) throw new ConfigError('--sink', 'proxy=1 but no proxy is configured', 'give --proxy, O365_PROXY or HTTPS_PROXY, or remove proxy=1');
    // One connection pool per sink, trusting only `ca` when given (a SIEM's private CA), else the system roots.
    const pool = {
      connections: 4,
      connectTimeout: Math.min(timeoutMs, 30_000),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      keepAliveTimeout: 10_000,
      ...(ca ? { connect: { ca } } : {}),
    };
    const agent = proxy && options.proxy ? proxyDispatcher(options.proxy, pool, ca) : new Agent(pool);
    this.target = { url: endpoint, headers, gzip, maxAttempts, agent };
    this.#limits = parameters;
    this.#telemetry = options.telemetry;
    this.#fallbackCode = options.fallbackCode;
  }

  /**
   * Sends `lines` (one per record of the batch, in order) as requests of at most maxRecords lines and maxBytes:
   * `send` gets each chunk and the index of its first record; `finish` runs after the last. A failure is reported to
   * the telemetry and thrown.
   */
  async write(lines: readonly Buffer[], send: (chunk: Buffer[], offset: number) => Promise<void>, finish?: () => Promise<void>): Promise<void> {
    let offset = 0;
    try {
      for (const chunk of chunks(lines, this.#limits.maxRecords, this.#limits.maxBytes)) {
        await send(chunk, offset);
        offset += chunk.length;
      }
      await finish?.();
    } catch (error) {
      this.failed(error as ConnectorError);
      throw error;
    }
  }

  /** POSTs `body` to the target, each repeated failure reported to the telemetry. */
  deliver(body: Buffer | string, judge: AnswerJudge, signal: AbortSignal | undefined, target: HttpTarget = this.target): Promise<HttpAnswer> {
    return deliver(target, body, judge, signal, (error) => this.failed(error));
  }

  sent(records: number, bytes: number): void {
    this.#telemetry?.sent(records, bytes);
  }

  /** A failed or repeated delivery, for the sink's telemetry. */
  failed(error: ConnectorError): void {
    this.#telemetry?.error({ stage: 'sending', code: error.code ?? this.#fallbackCode, message: error.message, discarded: 0 });
  }

  async close(): Promise<void> {
    await this.target.agent.close();
  }
}
