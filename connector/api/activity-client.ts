import { request, type Dispatcher } from 'undici';
import { ConnectorError } from '../errors.ts';
import type { Logger } from '../status/log.ts';
import type { ComponentReporter } from '../status/telemetry.ts';
import type { TokenProvider } from '../auth/token-provider.ts';
import { networkError } from '../auth/token-provider.ts';
import type { AuditRecord } from '../sinks/sink.ts';
import type { ActivityApi, ApiCallOptions, ContentBlob, FetchedContent, Subscription, TimeWindow } from './activity-api.ts';
import type { ContentType } from './content-types.ts';
import { activityError, ActivityApiError } from './af-errors.ts';
import { RequestBudget } from './request-budget.ts';
import { defaultRetryPolicy, isRetryable, retryAfterMs, retryDelayMs, sleep, type RetryPolicyOptions } from './retry-policy.ts';

export interface ActivityClientOptions {
  readonly apiRoot: string;
  readonly tenantId: string;
  /** Sent as PublisherIdentifier on every call, so the tenant gets its own throttling bucket. */
  readonly publisherId: string;
  readonly tokens: TokenProvider;
  readonly dispatcher: Dispatcher;
  readonly logger?: Logger;
  readonly telemetry?: ComponentReporter;
  readonly requestsPerMinute?: number;
  readonly maxInFlight?: number;
  readonly retry?: RetryPolicyOptions;
  /** The local clock the skew is measured against (the same one the windows planner uses). */
  readonly now?: () => Date;
}

const hour = 3_600_000;

/** `YYYY-MM-DDTHH:MM:SS`, UTC: one of the three formats the API accepts. */
export function apiTime(date: Date): string {
  return date.toISOString().slice(0, 19);
}

export class ActivityClient implements ActivityApi {
  readonly #options: ActivityClientOptions;
  readonly #budget: RequestBudget;
  readonly #retry: RetryPolicyOptions;
  readonly #feed: string;
  #clockSkewMs = 0;

  constructor(options: ActivityClientOptions) {
    this.#options = options;
    this.#budget = new RequestBudget({ requestsPerMinute: options.requestsPerMinute ?? 600, maxInFlight: options.maxInFlight ?? 8 });
    this.#retry = options.retry ?? defaultRetryPolicy;
    this.#feed = `${options.apiRoot.replace(/\/$/, '')}/api/v1.0/${options.tenantId}/activity/feed`;
  }

  get clockSkewMs(): number {
    return this.#clockSkewMs;
  }

  #url(pathOrUrl: string, query: Record<string, string> = {}): string {
    const url = new URL(pathOrUrl.startsWith('https://') ? pathOrUrl : `${this.#feed}/${pathOrUrl}`);
    for (const [key, value] of Object.entries(query)) url.searchParams.set(key, value);
    if (!url.searchParams.has('PublisherIdentifier')) url.searchParams.set('PublisherIdentifier', this.#options.publisherId);
    return url.toString();
  }

  /** One call with the retry policy: AF429/5xx/resets/truncated bodies retry; a 401 refreshes the token once. */
  async #send(method: 'GET' | 'POST', url: string, options: ApiCallOptions = {}): Promise<{ text: string; headers: Record<string, string | string[] | undefined> }> {
    let refreshedToken = false;
    for (let attempt = 1; ; attempt += 1) {
      let retryAfter: number | undefined;
      try {
        return await this.#once(method, url, options, (ms) => { retryAfter = ms; });
      } catch (error) {
        if (error instanceof ActivityApiError && error.code === 'UNAUTHORIZED' && !refreshedToken) {
          refreshedToken = true;
          this.#options.tokens.invalidate();
          continue;
        }
        if (!isRetryable(error) || attempt >= this.#retry.maxAttempts || options.abortSignal?.aborted) throw error;
        const delay = retryDelayMs(attempt, this.#retry, retryAfter);
        const code = error instanceof ConnectorError ? error.code : 'ERROR';
        this.#options.telemetry?.error({ stage: 'receiving', code, message: `retrying in ${delay} ms`, discarded: 0 });
        this.#options.logger?.warn({ component: 'api', code, attempt, delayMs: delay, url: url.split('?')[0] }, 'retrying Management Activity API call');
        await sleep(delay, options.abortSignal);
      }
    }
  }

  async #once(method: 'GET' | 'POST', url: string, options: ApiCallOptions, onRetryAfter: (ms: number | undefined) => void) {
    const release = await this.#budget.acquire(options.abortSignal);
    try {
      const token = await this.#options.tokens.getToken();
      let response: Dispatcher.ResponseData;
      let text: string;
      try {
        response = await request(url, {
          method,
          dispatcher: this.#options.dispatcher,
          headers: { authorization: `Bearer ${token}`, accept: 'application/json', ...(method === 'POST' ? { 'content-type': 'application/json' } : {}) },
          ...(options.abortSignal ? { signal: options.abortSignal } : {}),
        });
        text = await response.body.text();
      } catch (error) {
        if (options.abortSignal?.aborted) throw error;
        const cause = error as { code?: string; message?: string };
        throw networkError(cause.code ?? 'ECONNRESET', cause.message ?? String(error));
      }
      const date = response.headers['date'];
      if (typeof date === 'string') {
        const server = Date.parse(date);
        if (!Number.isNaN(server)) this.#clockSkewMs = server - (this.#options.now ?? (() => new Date()))().getTime();
      }
      if (response.statusCode >= 400) {
        onRetryAfter(retryAfterMs(response.headers['retry-after']));
        throw activityError(response.statusCode, text);
      }
      return { text, headers: response.headers };
    } finally {
      release();
    }
  }

  #json<T>(text: string, what: string): T {
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new ConnectorError('TRUNCATED_BODY', `the ${what} answer was not complete JSON (connection cut mid-body?).`, { retryable: true });
    }
  }

  async startSubscription(contentType: ContentType, options: ApiCallOptions = {}): Promise<Subscription> {
    try {
      const { text } = await this.#send('POST', this.#url('subscriptions/start', { contentType }), options);
      const body = this.#json<{ status?: string; webhook?: unknown }>(text, 'subscriptions/start');
      return { contentType, status: body.status ?? 'enabled', webhook: body.webhook ?? null };
    } catch (error) {
      // Starting an enabled subscription is not an error for us: that is the state we want.
      if (error instanceof ActivityApiError && error.code === 'AF20024') return { contentType, status: 'enabled', webhook: null };
      throw error;
    }
  }

  async stopSubscription(contentType: ContentType, options: ApiCallOptions = {}): Promise<void> {
    await this.#send('POST', this.#url('subscriptions/stop', { contentType }), options);
  }

  async listSubscriptions(options: ApiCallOptions = {}): Promise<Subscription[]> {
    const { text } = await this.#send('GET', this.#url('subscriptions/list'), options);
    const body = this.#json<Array<{ contentType: string; status?: string; webhook?: unknown }>>(text, 'subscriptions/list');
    return body.map((entry) => ({ contentType: entry.contentType, status: entry.status, webhook: entry.webhook ?? null }));
  }

  async *listContent(contentType: ContentType, window: TimeWindow, options: ApiCallOptions = {}): AsyncIterable<ContentBlob[]> {
    const span = window.end.getTime() - window.start.getTime();
    if (span <= 0 || span > 24 * hour) throw new ConnectorError('WINDOW_INVALID', `internal: window ${window.start.toISOString()}..${window.end.toISOString()} is not 0-24 h`);
    let next: string | undefined = this.#url('subscriptions/content', { contentType, startTime: apiTime(window.start), endTime: apiTime(window.end) });
    while (next) {
      const { text, headers } = await this.#send('GET', next, options);
      const page = this.#json<ContentBlob[]>(text, 'subscriptions/content');
      this.#options.telemetry?.received(0, text.length);
      yield page;
      const header = headers['nextpageuri'] ?? headers['nextpageurl'];
      next = typeof header === 'string' && header !== '' ? this.#url(header) : undefined;
    }
  }

  async fetchContent(blob: ContentBlob, options: ApiCallOptions = {}): Promise<FetchedContent> {
    const { text } = await this.#send('GET', this.#url(blob.contentUri), options);
    const records = this.#json<AuditRecord[]>(text, 'content');
    if (!Array.isArray(records)) throw new ConnectorError('TRUNCATED_BODY', 'the content answer was not a JSON array.', { retryable: true });
    const bytes = Buffer.byteLength(text);
    this.#options.telemetry?.received(records.length, bytes);
    return { records, bytes };
  }
}
