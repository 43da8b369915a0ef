/**
 * One POST with the retries every HTTP-based sink needs. The sink's judge reads each answer (HTTP status, and
 * the service's own codes such as HEC's `{"code":9}`) and says whether it was accepted, worth repeating, or
 * refused for good. Repeatable answers and dropped, refused or timed-out connections are retried a bounded
 * number of times, honouring Retry-After; then the error is thrown, still marked retryable, so the pipeline
 * holds the checkpoint and sends the same batch again later. Every response body is read to the end.
 */
import { promisify } from 'node:util';
import { gzip as gzipCallback } from 'node:zlib';
import { Agent, request, type Dispatcher } from 'undici';
import { proxyDispatcher } from '../../http/http-agent.ts';
import type { ProxySettings } from '../../http/proxy.ts';
import { ConfigError, ConnectorError } from '../../core/errors.ts';
import { retryAfterMs, retryDelayMs, sleep, type RetryPolicyOptions } from '../../http/retry-policy.ts';
import type { ComponentReporter } from '../../observe/telemetry.ts';
import { count, fileText, flag } from '../sink-url.ts';
import { transportFailure } from '../transport-failure.ts';

const gzip = promisify(gzipCallback);

export interface HttpTarget {
  /** Where requests go; for messages only its host is shown. */
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly gzip: boolean;
  readonly timeoutMs: number;
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

export interface DeliverOptions {
  readonly abortSignal?: AbortSignal | undefined;
  /** Called for each failed attempt that will be repeated (for telemetry). */
  readonly onRetry?: (error: ConnectorError) => void;
}

/** One connection pool per sink, trusting only `ca` when given (a SIEM's private CA), else the system roots. */
export function createSinkAgent(ca: string | undefined, timeoutMs: number, proxy?: ProxySettings): Dispatcher {
  const settings = {
    connections: 4,
    connectTimeout: Math.min(timeoutMs, 30_000),
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    keepAliveTimeout: 10_000,
    ...(ca ? { connect: { ca } } : {}),
  };
  return proxy ? proxyDispatcher(proxy, settings, ca) : new Agent(settings);
}

/** The parameters every HTTP-based sink shares, for its schema: `gzip`, `timeoutMs`, `maxAttempts`, `ca`. */
export const deliveryParameters = (defaultTimeoutMs = 30_000) => ({
  gzip: flag(),
  insecure: flag(),
  proxy: flag(),
  timeoutMs: count(defaultTimeoutMs, 100, 600_000),
  maxAttempts: count(5, 1, 100),
  ca: fileText(),
});

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

export interface DeliveryParameters {
  readonly gzip: boolean;
  readonly timeoutMs: number;
  readonly maxAttempts: number;
  readonly ca?: string | undefined;
  /** `proxy=1`: through the configured proxy. */
  readonly proxy?: boolean;
}

/**
 * Sinks go direct (they are usually inside the network): through the proxy only when the spec says `proxy=1`, and
 * then not to a host its NO_PROXY names.
 */
export function httpTarget(parameters: DeliveryParameters, endpoint: string, headers: Record<string, string>, proxy?: ProxySettings): HttpTarget {
  const { gzip, timeoutMs, maxAttempts, ca } = parameters;
  if (parameters.proxy && !proxy) throw new ConfigError('--sink', 'proxy=1 but no proxy is configured', 'give --proxy, O365_PROXY or HTTPS_PROXY, or remove proxy=1');
  return { url: endpoint, headers, gzip, timeoutMs, maxAttempts, agent: createSinkAgent(ca, timeoutMs, parameters.proxy ? proxy : undefined) };
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

/**
 * Reports a failed or repeated delivery to the sink's telemetry (as `onRetry`, and before a write rethrows);
 * `fallbackCode` names errors that are not the connector's own (an abort, a bug).
 */
export function sendingErrorReporter(telemetry: ComponentReporter | undefined, fallbackCode: string): (error: ConnectorError) => void {
  return (error) => telemetry?.error({ stage: 'sending', code: error.code ?? fallbackCode, message: error.message, discarded: 0 });
}

const backoff: RetryPolicyOptions = { maxAttempts: Number.POSITIVE_INFINITY, baseDelayMs: 250, maxDelayMs: 30_000, maxRetryAfterMs: 60_000 };

/** POSTs `body` (bytes as they are, text as UTF-8) until the judge accepts an answer; resolves with that answer. */
/** One request without a body (`HEAD`, `GET`): the answer, or the transport failure as a ConnectorError. */
export async function probe(target: HttpTarget, method: 'HEAD' | 'GET', options: { abortSignal?: AbortSignal } = {}): Promise<HttpAnswer> {
  try {
    const response = await request(target.url, { method, dispatcher: target.agent, headers: target.headers, ...(options.abortSignal ? { signal: options.abortSignal } : {}) });
    return { status: response.statusCode, text: await response.body.text(), retryAfter: undefined };
  } catch (cause) {
    if (options.abortSignal?.aborted) throw cause;
    throw transportFailure(cause, new URL(target.url).host);
  }
}

export async function deliver(target: HttpTarget, body: Buffer | string, judge: AnswerJudge, options: DeliverOptions = {}): Promise<HttpAnswer> {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const payload = target.gzip ? await gzip(bytes) : bytes;
  const headers = { ...target.headers, ...(target.gzip ? { 'content-encoding': 'gzip' } : {}) };
  const destination = new URL(target.url).host;
  for (let attempt = 1; ; attempt += 1) {
    let error: ConnectorError | undefined;
    let retryAfter: number | undefined;
    try {
      const response = await request(target.url, {
        method: 'POST', dispatcher: target.agent, headers, body: payload,
        ...(options.abortSignal ? { signal: options.abortSignal } : {}),
      });
      const header = response.headers['retry-after'];
      const answer: HttpAnswer = { status: response.statusCode, text: await response.body.text(), retryAfter: Array.isArray(header) ? header[0] : header };
      error = judge(answer);
      if (!error) return answer;
      retryAfter = retryAfterMs(answer.retryAfter);
    } catch (cause) {
      if (options.abortSignal?.aborted) throw cause;
      error = transportFailure(cause, destination);
    }
    if (!error.retryable || attempt >= target.maxAttempts) throw error;
    options.onRetry?.(error);
    await sleep(retryDelayMs(attempt, backoff, retryAfter), options.abortSignal);
  }
}
