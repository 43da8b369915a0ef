/**
 * The authorized request both Microsoft clients make (the Management Activity API, Graph): a bearer token from the
 * token source (renewed on 401, twice at most), the whole body read, the server's clock learned from `Date`, a
 * request budget's slot when there is one, and every call through the one retry loop with its log lines. URLs the
 * service hands back are used only on the configured origin: the token goes nowhere else.
 */
import { request, type Dispatcher } from 'undici';
import type { ConnectorError } from '../core/errors.ts';
import type { Logger } from '../observe/log.ts';
import type { ComponentReporter } from '../observe/telemetry.ts';
import { BodyTooLargeError, readPooled, type BodyPool } from './body-pool.ts';
import type { RequestBudget, RequestPriority } from './request-budget.ts';
import { defaultRetryPolicy, honouredRetryAfterMs, retry, retryAfterMs, type RetryPolicyOptions } from './retry.ts';
import { TransportError, transportError } from './transport-errors.ts';

/** Access tokens for one audience. */
export interface TokenSource {
  /** A valid access token, from cache until shortly before expiry. */
  getToken(options?: { abortSignal?: AbortSignal | undefined }): Promise<string>;
  /** The service refused `token` (401): forget it if it is still the current one, so the next getToken fetches anew. */
  invalidate(token?: string): void;
}

export interface Answer {
  readonly status: number;
  /** The whole body as received: content blobs are split from it without decoding (see content-records.ts). */
  readonly body: Buffer;
  /** The pooled buffer `body` is a view of, to give back to the pool once nothing refers to it. */
  readonly pooled?: Buffer | undefined;
  /** The body decoded as undici's text() does (UTF-8, a leading BOM skipped), on first use. */
  readonly text: string;
  readonly headers: Dispatcher.ResponseData['headers'];
}

function answerOf(response: Dispatcher.ResponseData, body: Buffer, pooled?: Buffer): Answer {
  let text: string | undefined;
  const start = body.length >= 3 && body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf ? 3 : 0;
  return { status: response.statusCode, body, pooled, headers: response.headers, get text() { return (text ??= body.toString('utf8', start)); } };
}

export interface ExchangeOptions {
  /** The API root: the token goes to its origin only. */
  readonly root: string;
  /** The code of a refusal a renewed token may cure (the service's 401). */
  readonly unauthorizedCode: string;
  /** For the retry log lines: `api`, `graph`, and the service's name. */
  readonly component: string;
  readonly name: string;
  readonly tokens: TokenSource;
  readonly dispatcher: Dispatcher;
  readonly retry?: RetryPolicyOptions | undefined;
  /** Time for one whole answer, headers and body; then REQUEST_TIMEOUT, retried (default: none). */
  readonly requestDeadlineMs?: number | undefined;
  /** A pooled body longer than this is not read: BodyTooLargeError. */
  readonly maxBodyBytes?: number | undefined;
  /** The local clock the skew is measured against. */
  readonly now?: (() => Date) | undefined;
  readonly logger?: Logger | undefined;
  readonly telemetry?: ComponentReporter | undefined;
  /** Every try takes a slot of it first, and tells it how it was answered. */
  readonly budget?: RequestBudget;
  /** Told of every answer: its status, or the code of the refusal or transport failure. */
  readonly onAnswer?: (url: string, code: string) => void;
}

export interface ExchangeRequest {
  readonly method?: 'GET' | 'POST';
  readonly url: string;
  /** A JSON request body (sent as application/json). */
  readonly json?: string | undefined;
  /** Sent after authorization and accept. */
  readonly headers?: Record<string, string>;
  readonly signal?: AbortSignal | undefined;
  readonly priority?: RequestPriority;
  /** Read a success's body into a buffer of this pool. */
  readonly pool?: BodyPool | undefined;
  /** The service's error for an answer outside 2xx. */
  readonly refusal: (status: number, text: string, retryAfterMs: number | undefined) => ConnectorError;
  /** Fields of the retry log line (the call's path or resource); without them the retries are not logged. */
  readonly log?: () => Record<string, unknown>;
}

const throttleSaidEveryMs = 60_000;

export class Exchange {
  readonly #options: ExchangeOptions;
  readonly #retry: RetryPolicyOptions;
  readonly #now: () => Date;
  readonly origin: string;
  #clockSkewMs = 0;
  /** When a throttled call of this exchange was last said at warn level (without a budget, it is said once a minute). */
  #throttleSaidAt = Number.NEGATIVE_INFINITY;

  constructor(options: ExchangeOptions) {
    this.#options = options;
    this.#retry = options.retry ?? defaultRetryPolicy;
    this.#now = options.now ?? (() => new Date());
    this.origin = new URL(options.root).origin;
  }

  /** How far the server's clock is ahead of ours, learned from the last answer's `Date`. */
  get clockSkewMs(): number {
    return this.#clockSkewMs;
  }

  /** `uri` as the service handed it back, when it is on the API root's origin; else `refuse(its host)` is thrown (no host: not a URL). */
  onOrigin(uri: string, refuse: (host: string | undefined) => ConnectorError): string {
    let url: URL;
    try {
      url = new URL(uri);
    } catch {
      throw refuse(undefined);
    }
    if (url.origin !== this.origin) throw refuse(url.host);
    return uri;
  }

  /** An exchange and the reading of its answer, repeated by the retry loop (a cut or garbled body is retried too). */
  call<T>(call: ExchangeRequest, read: (answer: Answer) => T): Promise<T> {
    const { logger, telemetry, budget, component, name } = this.#options;
    const log = call.log;
    return retry(async () => read(await this.#send(call)), {
      policy: this.#retry,
      signal: call.signal,
      onRetry: ({ error, attempt, delayMs, throttled }) => {
        if (!log) return;
        // Where a budget paces the calls, a throttled one is not an error: the budget logs each congestion event once, with the rate it learned.
        if (throttled && budget) return logger?.debug({ component, code: error.code, delayMs, ...log() }, `repeating a throttled ${name} call`);
        telemetry?.error({ stage: 'receiving', code: error.code, message: `${error.message}; retry ${attempt} in ${delayMs} ms`, discarded: 0 });
        // Without a budget (Microsoft Graph), throttling is said once a minute: a long history read under a busy tenant would
        // otherwise warn at every wait (each is counted in the metrics all the same).
        if (throttled) {
          const now = this.#now().getTime();
          if (now - this.#throttleSaidAt < throttleSaidEveryMs) return logger?.debug({ component, code: error.code, attempt, delayMs, ...log() }, `repeating a throttled ${name} call`);
          this.#throttleSaidAt = now;
        }
        logger?.warn({ component, code: error.code, attempt, delayMs, ...log() }, throttled ? `retrying ${name} call (throttled; said at most once a minute)` : `retrying ${name} call`);
      },
    });
  }

  /** One exchange: budget slot, token, request, whole body read; a 401 renews the token, twice at most. */
  async #send(call: ExchangeRequest): Promise<Answer> {
    const { tokens, budget, onAnswer, unauthorizedCode } = this.#options;
    const { url, signal } = call;
    for (let refreshes = 0; ; refreshes += 1) {
      const release = await budget?.acquire(signal, call.priority ?? 'live');
      let token: string;
      let answer: Answer;
      try {
        token = await tokens.getToken({ abortSignal: signal });
        answer = await this.#request(call, token);
      } finally {
        release?.();
      }
      const serverNow = typeof answer.headers['date'] === 'string' ? Date.parse(answer.headers['date']) : Number.NaN;
      // Date has whole seconds: the server's clock was, on average, half a second past it.
      if (!Number.isNaN(serverNow)) this.#clockSkewMs = serverNow + 500 - this.#now().getTime();
      if (answer.status < 300) {
        budget?.answered({ throttled: false, grantedAt: release!.grantedAt });
        onAnswer?.(url, String(answer.status));
        return answer;
      }
      const error = call.refusal(answer.status, answer.text, retryAfterMs(answer.headers['retry-after'], Number.isNaN(serverNow) ? Date.now() : serverNow));
      onAnswer?.(url, error.code);
      // A spent quota, whatever the status (AF429 as 429 or 403): the budget slows down, and pauses for a Retry-After.
      const asked = (error as { retryAfterMs?: number }).retryAfterMs;
      budget?.answered({ throttled: error.throttled, retryAfterMs: honouredRetryAfterMs(asked, this.#retry), grantedAt: release!.grantedAt });
      // Twice at most: the renewed token itself can expire before its request is answered (a clock that jumps).
      if (error.code === unauthorizedCode && refreshes < 2) {
        tokens.invalidate(token);
        continue;
      }
      throw error;
    }
  }

  async #request(call: ExchangeRequest, token: string): Promise<Answer> {
    const { url, signal, method = 'GET', pool, json } = call;
    const options = this.#options;
    // A total deadline for the answer, headers and body: the idle timeouts alone let a trickled body hang for ever.
    const deadline = options.requestDeadlineMs === undefined ? undefined : new RequestDeadline(options.requestDeadlineMs, signal);
    try {
      const requestSignal = deadline?.signal ?? signal;
      const response = await request(url, {
        method,
        dispatcher: options.dispatcher,
        headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...(json === undefined ? {} : { 'content-type': 'application/json' }), ...call.headers },
        ...(json === undefined ? {} : { body: json }),
        // Time to wait for response headers, then for each body chunk.
        headersTimeout: 60_000,
        bodyTimeout: 120_000,
        ...(requestSignal ? { signal: requestSignal } : {}),
      });
      if (pool && response.statusCode < 300) {
        const announced = Number(response.headers['content-length']);
        const { buffer, length } = await readPooled(response.body, pool, Number.isSafeInteger(announced) ? announced : undefined, options.maxBodyBytes);
        return answerOf(response, buffer.subarray(0, length), buffer);
      }
      const bytes = await response.body.bytes();
      return answerOf(response, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (!deadline?.expired && error instanceof BodyTooLargeError) {
        options.onAnswer?.(url, 'BLOB_TOO_LARGE');
        throw error;
      }
      const failure = deadline?.expired
        ? new TransportError('REQUEST_TIMEOUT', `no complete answer from ${new URL(url).host} within ${options.requestDeadlineMs! / 1000} s`, {
          fix: 'check network access and proxies to the endpoint; a slow link may need a longer --request-deadline', retryable: true,
        })
        : transportError(error, url);
      options.onAnswer?.(url, failure.code);
      throw failure;
    } finally {
      deadline?.clear();
    }
  }
}

/**
 * The signal of one request: aborted by the caller's signal or when the total deadline passes. Its timer and its
 * listener on the caller's signal go away as soon as the request ends (AbortSignal.timeout and AbortSignal.any
 * would keep a timer and a dependant per request alive for the whole deadline, thousands of them in a backfill).
 */
class RequestDeadline {
  readonly #controller = new AbortController();
  readonly #timer: NodeJS.Timeout;
  readonly #parent: AbortSignal | undefined;
  readonly #onParentAbort = (): void => this.#controller.abort(this.#parent?.reason);
  expired = false;

  constructor(ms: number, parent: AbortSignal | undefined) {
    this.#parent = parent;
    this.#timer = setTimeout(() => {
      this.expired = true;
      this.#controller.abort(new Error('request deadline passed'));
    }, ms);
    this.#timer.unref();
    if (parent?.aborted) this.#controller.abort(parent.reason);
    else parent?.addEventListener('abort', this.#onParentAbort, { once: true });
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  clear(): void {
    clearTimeout(this.#timer);
    this.#parent?.removeEventListener('abort', this.#onParentAbort);
  }
}
