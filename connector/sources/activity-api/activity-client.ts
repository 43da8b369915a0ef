/**
 * The Office 365 Management Activity API over undici. Every call: takes a slot from the request budget, adds
 * PublisherIdentifier, sends the bearer token (renewed on 401, twice at most), consumes the whole body, learns the
 * server's clock from `Date`, and goes through the retry policy. Errors are ActivityApiError (AF codes) or
 * TransportError. On AF20022 while listing, the error is thrown as is: the collector starts the subscription
 * and lists again (it owns the "once per 15 minutes" pacing), see `subscriptionMissingCode`.
 */
import { request, type Dispatcher } from 'undici';
import { ConnectorError } from '../../core/errors.ts';
import type { Logger } from '../../observe/log.ts';
import type { ComponentReporter } from '../../observe/telemetry.ts';
import { retentionMs, type ActivityApi, type ApiCallOptions, type ContentBlob, type FetchedContent, type Subscription, type TimeWindow } from './activity-api.ts';
import { type ApiRate } from '../../core/commit.ts';
import type { ContentType } from '../../../contract/content-types.ts';
import { activityError, ActivityApiError, forContentType, invalidBodyCode, unauthorizedCode } from './af-errors.ts';
import { BodyPool, BodyTooLargeError, readPooled } from '../../http/body-pool.ts';
import { contentRecords } from './content-records.ts';
import { RequestBudget, type RequestPriority } from '../../http/request-budget.ts';
import { defaultRetryPolicy, honouredRetryAfterMs, retryAfterMs, withRetry, type RetryPolicyOptions } from '../../http/retry-policy.ts';
import { TransportError, transportError } from '../../http/transport-errors.ts';

/** What the client needs from the credentials side. */
export interface AccessTokenSource {
  getToken(options?: { abortSignal?: AbortSignal | undefined }): Promise<string>;
  /** The API refused `token`: forget it (only if it is still the cached one) so the next getToken fetches a new one. */
  invalidate(token?: string): void;
}

export interface ActivityClientOptions {
  readonly apiRoot: string;
  readonly tenantId: string;
  /** Sent as PublisherIdentifier on every call, so the tenant gets its own throttling bucket. */
  readonly publisherId: string;
  readonly tokens: AccessTokenSource;
  readonly dispatcher: Dispatcher;
  readonly logger?: Logger;
  readonly telemetry?: ComponentReporter;
  /** Ceiling of the adaptive request rate: starts just under it, slows on AF429. */
  readonly requestsPerMinute: number;
  /** Requests in flight at most. */
  readonly maxInFlight: number;
  readonly retry?: RetryPolicyOptions;
  /** Time to wait for response headers, then for each body chunk (default 60 s and 120 s). */
  readonly headersTimeoutMs?: number;
  readonly bodyTimeoutMs?: number;
  /** The local clock the skew is measured against (the same one the windows planner uses). */
  readonly now?: () => Date;
  /** Where content bodies are read into and given back to (default: one of its own). */
  readonly bodyPool?: BodyPool;
  /** A content body longer than this is not read: the fetch fails with BLOB_TOO_LARGE. */
  readonly maxBlobBytes: number;
  /** Time for one whole answer, headers and body; then REQUEST_TIMEOUT, retried. */
  readonly requestDeadlineMs: number;
}

const second = 1000;
/** A tenant counts as throttled now while an AF429 came back within this long. */
const throttledRecentlyMs = 5 * 60_000;
const hour = 3_600_000;
const day = 24 * hour;

/** `YYYY-MM-DDTHH:MM:SS`, UTC: one of the three formats the API accepts (fractions are cut, not rounded). */
export function apiTime(date: Date): string {
  return date.toISOString().slice(0, 19);
}

interface Answer {
  /** The whole body as received: content blobs are split from it without decoding (see content-records.ts). */
  readonly body: Buffer;
  /** The pooled buffer `body` is a view of, to give back to the pool once nothing refers to it. */
  readonly pooled?: Buffer | undefined;
  /** The body decoded as undici's text() does (UTF-8, a leading BOM skipped), on first use. */
  readonly text: string;
  readonly headers: Dispatcher.ResponseData['headers'];
}

function answerOf(body: Buffer, headers: Dispatcher.ResponseData['headers'], pooled?: Buffer): Answer {
  let text: string | undefined;
  const start = body.length >= 3 && body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf ? 3 : 0;
  return { body, pooled, headers, get text() { return (text ??= body.toString('utf8', start)); } };
}

export class ActivityClient implements ActivityApi {
  readonly #options: ActivityClientOptions;
  readonly #budget: RequestBudget;
  readonly #bodies: BodyPool;
  #observer: ((operation: string, code: string) => void) | undefined;
  readonly #maxBlobBytes: number;
  readonly #requestDeadlineMs: number;
  readonly #retry: RetryPolicyOptions;
  readonly #origin: string;
  readonly #feed: string;
  readonly #now: () => Date;
  #clockSkewMs = 0;

  constructor(options: ActivityClientOptions) {
    this.#options = options;
    this.#bodies = options.bodyPool ?? new BodyPool();
    this.#maxBlobBytes = options.maxBlobBytes;
    this.#requestDeadlineMs = options.requestDeadlineMs;
    this.#budget = new RequestBudget({
      requestsPerMinute: options.requestsPerMinute,
      maxInFlight: options.maxInFlight,
      onCongestion: ({ learnedPerMinute, ratePerMinute, throttled }) => {
        options.logger?.warn({ component: 'api', code: 'AF429', throttled, learnedPerMinute: Math.round(learnedPerMinute), ratePerMinute: Math.round(ratePerMinute) },
          `the tenant is throttled (AF429): the service took about ${Math.round(learnedPerMinute)} requests a minute, the connector now asks ${Math.round(ratePerMinute)} a minute and repeats what was refused`);
      },
    });
    this.#retry = options.retry ?? defaultRetryPolicy;
    const root = new URL(options.apiRoot);
    this.#origin = root.origin;
    this.#feed = `${root.origin}${root.pathname.replace(/\/$/, '')}/api/v1.0/${encodeURIComponent(options.tenantId)}/activity/feed`;
    this.#now = options.now ?? (() => new Date());
  }

  get clockSkewMs(): number {
    return this.#clockSkewMs;
  }

  /** Requests currently holding a slot of the budget (for tests and status). */
  get inFlight(): number {
    return this.#budget.inFlight;
  }

  /** Where the request rate stands: what the connector asks now, what the service took when it last throttled, AF429s so far. */
  get rate(): ApiRate {
    const learned = this.#budget.learnedPerMinute;
    return {
      perMinute: Math.round(this.#budget.requestsPerMinute),
      ceilingPerMinute: this.#budget.ceilingPerMinute,
      ...(learned !== undefined ? { learnedPerMinute: Math.round(learned) } : {}),
      throttled: this.#budget.throttled,
      throttledNow: this.#budget.throttledWithin(throttledRecentlyMs),
    };
  }

  #feedUrl(path: string, query: Record<string, string> = {}): string {
    const params = new URLSearchParams(query);
    params.set('PublisherIdentifier', this.#options.publisherId);
    return `${this.#feed}/${path}?${params.toString()}`;
  }

  /**
   * A URL the service handed us (NextPageUri, contentUri), used verbatim with PublisherIdentifier added when
   * missing. The bearer token is only ever sent to the configured API root.
   */
  #serviceUrl(uri: string, what: string): string {
    let url: URL;
    try {
      url = new URL(uri);
    } catch {
      throw new ActivityApiError('UNTRUSTED_URI', `the service returned a ${what} that is not a URL`, 0);
    }
    if (url.origin !== this.#origin) {
      throw new ActivityApiError('UNTRUSTED_URI', `the service returned a ${what} on ${url.host}, outside apiRoot ${this.#origin}; the token is not sent there`, 0, {
        fix: 'check apiRoot/cloud match the tenant; if they do, report this host',
      });
    }
    if (/[?&]PublisherIdentifier=/i.test(uri)) return uri;
    const separator = uri.includes('?') ? (uri.endsWith('?') || uri.endsWith('&') ? '' : '&') : '?';
    return `${uri}${separator}PublisherIdentifier=${encodeURIComponent(this.#options.publisherId)}`;
  }

  #learnClock(headers: Dispatcher.ResponseData['headers'], receivedAt: number): void {
    const date = headers['date'];
    if (typeof date !== 'string') return;
    const server = Date.parse(date);
    // Date has whole seconds: the server's clock was, on average, half a second past it.
    if (!Number.isNaN(server)) this.#clockSkewMs = server + 500 - receivedAt;
  }

  /**
   * One exchange: budget slot, token, request, whole body read (into a buffer of `pool` when given and the answer
   * is a success); a 401 renews the token, twice at most.
   */
  /** Called for every answer (or transport failure): the operation (`subscriptions/content`, `audit`, ...) and its code. */
  observeAnswers(listener: (operation: string, code: string) => void): void {
    this.#observer = listener;
  }

  #answered(url: string, code: string): void {
    if (!this.#observer) return;
    const path = new URL(url).pathname;
    this.#observer(/\/audit\//.test(path) ? 'audit' : /\/(subscriptions\/\w+)$/.exec(path)?.[1] ?? 'other', code);
  }

  async #exchange(method: 'GET' | 'POST', url: string, signal: AbortSignal | undefined, priority: RequestPriority, pool?: BodyPool): Promise<Answer> {
    for (let refreshes = 0; ; refreshes += 1) {
      const release = await this.#budget.acquire(signal, priority);
      let token: string;
      let status: number;
      let answer: Answer;
      try {
        token = await this.#options.tokens.getToken({ abortSignal: signal });
        let response: Dispatcher.ResponseData;
        // A total deadline for the answer, headers and body: the idle timeouts alone let a trickled body hang for ever.
        const deadline = new RequestDeadline(this.#requestDeadlineMs, signal);
        try {
          response = await request(url, {
            method,
            dispatcher: this.#options.dispatcher,
            headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...(method === 'POST' ? { 'content-type': 'application/json' } : {}) },
            headersTimeout: this.#options.headersTimeoutMs ?? 60 * second,
            bodyTimeout: this.#options.bodyTimeoutMs ?? 120 * second,
            signal: deadline.signal,
          });
          if (pool && response.statusCode < 300) {
            const announced = Number(response.headers['content-length']);
            const { buffer, length } = await readPooled(response.body, pool, Number.isSafeInteger(announced) ? announced : undefined, this.#maxBlobBytes);
            answer = answerOf(buffer.subarray(0, length), response.headers, buffer);
          } else {
            const bytes = await response.body.bytes();
            answer = answerOf(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), response.headers);
          }
        } catch (error) {
          if (signal?.aborted) throw signal.reason;
          if (!deadline.expired && error instanceof BodyTooLargeError) { // not retryable; fetchContent names the blob
            this.#answered(url, 'BLOB_TOO_LARGE');
            throw error;
          }
          const failure = deadline.expired
            ? new TransportError('REQUEST_TIMEOUT', `no complete answer from ${new URL(url).host} within ${this.#requestDeadlineMs / 1000} s`, {
              fix: 'check network access and proxies to the endpoint; a slow link may need a longer --request-deadline', retryable: true,
            })
            : transportError(error, url);
          this.#answered(url, failure.code);
          throw failure;
        } finally {
          deadline.clear();
        }
        status = response.statusCode;
        this.#learnClock(response.headers, this.#now().getTime());
      } finally {
        release();
      }
      if (status < 300) {
        this.#budget.answered({ throttled: false, grantedAt: release.grantedAt });
        this.#answered(url, String(status));
        return answer;
      }
      const serverNow = typeof answer.headers['date'] === 'string' ? Date.parse(answer.headers['date']) : Number.NaN;
      const error = activityError(status, answer.text, retryAfterMs(answer.headers['retry-after'], Number.isNaN(serverNow) ? Date.now() : serverNow));
      this.#answered(url, error.code);
      // AF429 means the quota is spent, whatever the status (429 or 403): the budget slows down, and pauses for a Retry-After.
      this.#budget.answered({ throttled: error.throttled, retryAfterMs: honouredRetryAfterMs(error.retryAfterMs, this.#retry), grantedAt: release.grantedAt });
      // Twice at most: the renewed token itself can expire before its request is answered (a clock that jumps).
      if (error.code === unauthorizedCode && refreshes < 2) {
        this.#options.tokens.invalidate(token);
        continue;
      }
      throw error;
    }
  }

  /** An exchange and the reading of its JSON, repeated by the retry policy (a cut or garbled body is retried too). */
  #call<T>(method: 'GET' | 'POST', url: string, options: ApiCallOptions, read: (answer: Answer) => T, pool?: BodyPool): Promise<T> {
    const signal = options.abortSignal;
    return withRetry(async () => read(await this.#exchange(method, url, signal, options.priority ?? 'live', pool)), this.#retry, {
      abortSignal: signal,
      onRetry: ({ error, attempt, delayMs, throttled }) => {
        const path = url.split('?')[0]!.slice(this.#origin.length);
        // A throttled call is not an error: the budget logs each congestion event once, with the rate it learned.
        if (throttled) {
          this.#options.logger?.debug({ component: 'api', code: error.code, delayMs, path }, 'repeating a throttled Management Activity API call');
          return;
        }
        this.#options.telemetry?.error({ stage: 'receiving', code: error.code, message: `${error.message}; retry ${attempt} in ${delayMs} ms`, discarded: 0 });
        this.#options.logger?.warn({ component: 'api', code: error.code, attempt, delayMs, path }, 'retrying Management Activity API call');
      },
    });
  }

  #json<T>(answer: Answer, what: string, check: (value: unknown) => boolean): T {
    let value: unknown;
    try {
      value = JSON.parse(answer.text);
    } catch {
      throw new ActivityApiError(invalidBodyCode, `the ${what} answer was not complete JSON (${answer.text.length} characters; connection cut mid-body?)`, 200, { retryable: true });
    }
    if (!check(value)) throw new ActivityApiError(invalidBodyCode, `the ${what} answer did not have the documented shape`, 200, { retryable: true });
    return value as T;
  }

  async startSubscription(contentType: ContentType, options: ApiCallOptions = {}): Promise<Subscription> {
    try {
      return await this.#call('POST', this.#feedUrl('subscriptions/start', { contentType }), options, (answer) => {
        const body = answer.text.trim() === '' ? {} : this.#json<{ status?: string; webhook?: unknown }>(answer, 'subscriptions/start', (v) => typeof v === 'object' && v !== null);
        return { contentType, status: body.status ?? 'enabled', webhook: body.webhook ?? null };
      });
    } catch (error) {
      // Already enabled is the state we asked for: starting is idempotent.
      if (error instanceof ActivityApiError && error.code === 'AF20024') return { contentType, status: 'enabled', webhook: null };
      throw forContentType(error, contentType);
    }
  }

  async stopSubscription(contentType: ContentType, options: ApiCallOptions = {}): Promise<void> {
    await this.#call('POST', this.#feedUrl('subscriptions/stop', { contentType }), options, () => undefined);
  }

  listSubscriptions(options: ApiCallOptions = {}): Promise<Subscription[]> {
    return this.#call('GET', this.#feedUrl('subscriptions/list'), options, (answer) =>
      this.#json<Array<{ contentType: string; status?: string; webhook?: unknown }>>(answer, 'subscriptions/list', Array.isArray)
        .map((entry) => ({ contentType: entry.contentType, status: entry.status, webhook: entry.webhook ?? null })));
  }

  /** Refuses, before sending, a window the service would reject with AF20055 (a planning bug, not a retryable fault). */
  #checkWindow(window: TimeWindow): { startTime: string; endTime: string } {
    const startTime = apiTime(window.start);
    const endTime = apiTime(window.end);
    const start = Date.parse(`${startTime}Z`);
    const end = Date.parse(`${endTime}Z`);
    const serverNow = this.#now().getTime() + this.#clockSkewMs;
    let problem: string | undefined;
    if (Number.isNaN(start) || Number.isNaN(end)) problem = 'has an invalid bound';
    else if (end <= start) problem = 'ends before it starts (whole seconds)';
    else if (end - start > day) problem = 'is longer than 24 hours';
    else if (start < serverNow - retentionMs) problem = 'starts more than 7 days before the server\'s time';
    if (problem) {
      throw new ConnectorError('WINDOW_INVALID', `listing window ${startTime}..${endTime} ${problem}`, { fix: 'report this as a connector bug; meanwhile a later --since may help' });
    }
    return { startTime, endTime };
  }

  async *listContent(contentType: ContentType, window: TimeWindow, options: ApiCallOptions = {}): AsyncIterable<ContentBlob[]> {
    let next: string | undefined = this.#feedUrl('subscriptions/content', { contentType, ...this.#checkWindow(window) });
    while (next !== undefined) {
      const { page, nextPage, bytes }: { page: ContentBlob[]; nextPage: string | undefined; bytes: number } = await this.#call('GET', next, options, (answer) => {
        const header = answer.headers['nextpageuri'] ?? answer.headers['nextpageurl'];
        const uri = Array.isArray(header) ? header[0] : header;
        return {
          page: this.#json<ContentBlob[]>(answer, 'subscriptions/content', Array.isArray),
          nextPage: uri !== undefined && uri.trim() !== '' ? uri.trim() : undefined,
          bytes: answer.text.length,
        };
      }).catch((error: unknown) => { throw forContentType(error, contentType); });
      this.#options.telemetry?.received(0, bytes);
      next = nextPage === undefined ? undefined : this.#serviceUrl(nextPage, 'NextPageUri');
      yield page;
    }
  }

  async fetchContent(blob: ContentBlob, options: ApiCallOptions = {}): Promise<FetchedContent> {
    const pool = this.#bodies;
    const result = await this.#call('GET', this.#serviceUrl(blob.contentUri, 'contentUri'), options, (answer) => {
      const give = () => { if (answer.pooled) pool.give(answer.pooled); };
      try {
        const { records, rejected } = contentRecords(answer.body);
        return { records, rejected, bytes: answer.body.length, release: give };
      } catch (error) {
        give();
        throw error;
      }
    }, pool).catch((error: unknown) => {
      // Named by its content id, so that the log, the held blob and `status` say which one.
      if (error instanceof BodyTooLargeError) {
        throw new ConnectorError('BLOB_TOO_LARGE', `content ${blob.contentId} of ${blob.contentType}: ${error.message} (--max-blob-bytes)`, {
          fix: 'raise --max-blob-bytes if the blob is genuine; Microsoft\'s are far smaller, so report the host if not', cause: error,
        });
      }
      throw error;
    });
    this.#options.telemetry?.received(result.records.length, result.bytes);
    return result;
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
