/**
 * The Office 365 Management Activity API over undici. Every call: takes a slot from the request budget, adds
 * PublisherIdentifier, sends the bearer token (renewed on 401, twice at most), consumes the whole body, learns the
 * server's clock from `Date`, and goes through the retry policy. Errors are ActivityApiError (AF codes) or
 * TransportError. On AF20022 while listing, the error is thrown as is: the collector starts the subscription
 * and lists again (it owns the "once per 15 minutes" pacing), see `subscriptionMissingCode`.
 */
import { ConnectorError } from '../../core/errors.ts';
import { retentionMs, type ActivityApi, type ApiCallOptions, type ContentBlob, type FetchedContent, type Subscription, type TimeWindow } from './activity-api.ts';
import { type ApiRate } from '../../core/commit.ts';
import type { ContentType } from '../../../contract/content-types.ts';
import { activityError, ActivityApiError, forContentType, invalidBodyCode, unauthorizedCode } from './af-errors.ts';
import { BodyPool, BodyTooLargeError } from '../../http/body-pool.ts';
import { contentRecords } from './content-records.ts';
import { RequestBudget } from '../../http/request-budget.ts';
import { Exchange, type Answer, type ExchangeOptions } from '../../http/exchange.ts';

/** The token source, the connection pool, retry policy, clock (the one the windows planner uses), logger and telemetry. */
export interface ActivityClientOptions extends Pick<ExchangeOptions, 'tokens' | 'dispatcher' | 'retry' | 'now' | 'logger' | 'telemetry'> {
  readonly apiRoot: string;
  readonly tenantId: string;
  /** Sent as PublisherIdentifier on every call, so the tenant gets its own throttling bucket. */
  readonly publisherId: string;
  /** Ceiling of the adaptive request rate: starts just under it, slows on AF429. */
  readonly requestsPerMinute: number;
  /** Requests in flight at most. */
  readonly maxInFlight: number;
  /** A content body longer than this is not read: the fetch fails with BLOB_TOO_LARGE. */
  readonly maxBlobBytes: number;
  /** Time for one whole answer, headers and body; then REQUEST_TIMEOUT, retried. */
  readonly requestDeadlineMs: number;
}

/** A tenant counts as throttled now while an AF429 came back within this long. */
const throttledRecentlyMs = 5 * 60_000;
const hour = 3_600_000;
const day = 24 * hour;

/** `YYYY-MM-DDTHH:MM:SS`, UTC: one of the three formats the API accepts (fractions are cut, not rounded). */
export function apiTime(date: Date): string {
  return date.toISOString().slice(0, 19);
}

export class ActivityClient implements ActivityApi {
  readonly #options: ActivityClientOptions;
  readonly #budget: RequestBudget;
  /** Where content bodies are read into and given back to. */
  readonly #bodies = new BodyPool();
  #observer: ((operation: string, code: string) => void) | undefined;
  readonly #feed: string;
  readonly #now: () => Date;
  readonly #exchange: Exchange;

  constructor(options: ActivityClientOptions) {
    this.#options = options;
    this.#budget = new RequestBudget({
      requestsPerMinute: options.requestsPerMinute,
      maxInFlight: options.maxInFlight,
      onCongestion: ({ learnedPerMinute, ratePerMinute, throttled }) => {
        options.logger?.warn({ component: 'api', code: 'AF429', throttled, learnedPerMinute: Math.round(learnedPerMinute), ratePerMinute: Math.round(ratePerMinute) },
          `the tenant is throttled (AF429): the service took about ${Math.round(learnedPerMinute)} requests a minute, the connector now asks ${Math.round(ratePerMinute)} a minute and repeats what was refused`);
      },
    });
    const root = new URL(options.apiRoot);
    this.#feed = `${root.origin}${root.pathname.replace(/\/$/, '')}/api/v1.0/${encodeURIComponent(options.tenantId)}/activity/feed`;
    this.#now = options.now ?? (() => new Date());
    this.#exchange = new Exchange({
      ...options, root: options.apiRoot, unauthorizedCode, component: 'api', name: 'Management Activity API', budget: this.#budget, onAnswer: (url, code) => this.#answered(url, code),
      maxBodyBytes: options.maxBlobBytes, now: this.#now,
    });
  }

  get clockSkewMs(): number {
    return this.#exchange.clockSkewMs;
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
    this.#exchange.onOrigin(uri, (host) => host === undefined
      ? new ActivityApiError('UNTRUSTED_URI', `the service returned a ${what} that is not a URL`, 0)
      : new ActivityApiError('UNTRUSTED_URI', `the service returned a ${what} on ${host}, outside apiRoot ${this.#exchange.origin}; the token is not sent there`, 0, {
        fix: 'check apiRoot/cloud match the tenant; if they do, report this host',
      }));
    if (/[?&]PublisherIdentifier=/i.test(uri)) return uri;
    const separator = uri.includes('?') ? (uri.endsWith('?') || uri.endsWith('&') ? '' : '&') : '?';
    return `${uri}${separator}PublisherIdentifier=${encodeURIComponent(this.#options.publisherId)}`;
  }

  /** Called for every answer (or transport failure): the operation (`subscriptions/content`, `audit`, ...) and its code. */
  observeAnswers(listener: (operation: string, code: string) => void): void {
    this.#observer = listener;
  }

  #answered(url: string, code: string): void {
    if (!this.#observer) return;
    const path = new URL(url).pathname;
    this.#observer(/\/audit\//.test(path) ? 'audit' : /\/(subscriptions\/\w+)$/.exec(path)?.[1] ?? 'other', code);
  }

  /** An exchange and the reading of its JSON, repeated by the retry loop (a cut or garbled body is retried too). */
  #call<T>(method: 'GET' | 'POST', url: string, options: ApiCallOptions, read: (answer: Answer) => T, pool?: BodyPool): Promise<T> {
    return this.#exchange.call({
      method, url, signal: options.abortSignal, priority: options.priority ?? 'live', pool,
      ...(method === 'POST' ? { headers: { 'content-type': 'application/json' } } : {}),
      refusal: activityError,
      log: () => ({ path: url.split('?')[0]!.slice(this.#exchange.origin.length) }),
    }, read);
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
    const serverNow = this.#now().getTime() + this.#exchange.clockSkewMs;
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
