/**
 * Microsoft Graph's service announcements over undici: a bearer token for the Graph audience of the configured cloud
 * (`${graphRoot}/.default`, its own msal token provider with the app's credential), renewed on 401 (twice at most),
 * every body read whole, the server's clock learned from `Date`, and every call through the one retry policy
 * (retry-policy.ts): 429 and 503/504 wait what `Retry-After` asks (capped by the policy), other 5xx and cut bodies back
 * off with jitter. `@odata.nextLink` is followed verbatim, and only ever on graphRoot's origin (the token goes nowhere else).
 */
import { request, type Dispatcher } from 'undici';
import type { ApiCallOptions } from '../activity-api/activity-api.ts';
import type { AccessTokenSource } from '../activity-api/activity-client.ts';
import { defaultRetryPolicy, retry, retryAfterMs, type RetryPolicyOptions } from '../../http/retry.ts';
import { transportError } from '../../http/transport-errors.ts';
import type { Logger } from '../../observe/log.ts';
import type { ComponentReporter } from '../../observe/telemetry.ts';
import { graphError, GraphApiError, graphUnauthorizedCode, type ServiceAnnouncementResource } from './graph-errors.ts';
import { graphPage, type GraphPage } from './graph-page.ts';
import type { AnnouncementItem, AnnouncementKind, ServiceHealthApi, ServiceHealthOverview } from './service-health-api.ts';

export interface ServiceHealthClientOptions {
  /** `https://graph.microsoft.com` (or the cloud's, or a stand-in's): v1.0 is appended. */
  readonly graphRoot: string;
  readonly tokens: AccessTokenSource;
  readonly dispatcher: Dispatcher;
  readonly logger?: Logger;
  readonly telemetry?: ComponentReporter;
  readonly retry?: RetryPolicyOptions;
  /** Items per page asked for (`Prefer: odata.maxpagesize`); Graph's default is 100, its maximum 1,000. */
  readonly pageSize?: number;
  readonly headersTimeoutMs?: number;
  readonly bodyTimeoutMs?: number;
  readonly now?: () => Date;
}

/** Graph's DateTimeOffset literal in a $filter: ISO UTC, no quotes. */
export function graphTime(date: Date): string {
  return date.toISOString().replace(/\.000Z$/, 'Z');
}

export class ServiceHealthClient implements ServiceHealthApi {
  readonly #options: ServiceHealthClientOptions;
  readonly #retry: RetryPolicyOptions;
  readonly #origin: string;
  readonly #base: string;
  readonly #now: () => Date;
  #clockSkewMs = 0;

  constructor(options: ServiceHealthClientOptions) {
    this.#options = options;
    this.#retry = options.retry ?? defaultRetryPolicy;
    const root = new URL(options.graphRoot);
    this.#origin = root.origin;
    this.#base = `${root.origin}${root.pathname.replace(/\/$/, '')}/v1.0/admin/serviceAnnouncement`;
    this.#now = options.now ?? (() => new Date());
  }

  get clockSkewMs(): number {
    return this.#clockSkewMs;
  }

  async *listChanged(kind: AnnouncementKind, since: Date, options: ApiCallOptions = {}): AsyncIterable<AnnouncementItem[]> {
    const first = `${this.#base}/${kind}?${new URLSearchParams({ $filter: `lastModifiedDateTime ge ${graphTime(since)}` }).toString()}`;
    for await (const page of this.#pages(kind, first, options)) {
      yield page.items.map(({ value, bytes }) => itemOf(value, bytes, kind));
    }
  }

  async healthOverviews(options: ApiCallOptions = {}): Promise<ServiceHealthOverview[]> {
    const overviews: ServiceHealthOverview[] = [];
    for await (const page of this.#pages('healthOverviews', `${this.#base}/healthOverviews`, options)) {
      for (const { value } of page.items) {
        const entry = value as Partial<Record<'id' | 'service' | 'status', unknown>>;
        if (typeof entry?.service !== 'string' || typeof entry.status !== 'string') {
          throw new GraphApiError('INVALID_BODY', 'a healthOverviews entry had no service or status', 200, { retryable: true });
        }
        overviews.push({ id: typeof entry.id === 'string' ? entry.id : entry.service, service: entry.service, status: entry.status });
      }
    }
    return overviews;
  }

  /** One item of `resource` (`$top=1`): resolves when the app may read it, rejects GRAPH_FORBIDDEN when it lacks the permission. */
  async probe(resource: AnnouncementKind, options: ApiCallOptions = {}): Promise<void> {
    const url = `${this.#base}/${resource}?${new URLSearchParams({ $top: '1' }).toString()}`;
    await retry(async () => graphPage(await this.#exchange(resource, url, options.abortSignal), resource), { policy: this.#retry, signal: options.abortSignal });
  }

  async *#pages(resource: ServiceAnnouncementResource, first: string, options: ApiCallOptions): AsyncGenerator<GraphPage> {
    let next: string | undefined = first;
    while (next !== undefined) {
      const url: string = next;
      const page: GraphPage = await retry(async () => graphPage(await this.#exchange(resource, url, options.abortSignal), resource), {
        policy: this.#retry,
        signal: options.abortSignal,
        onRetry: ({ error, attempt, delayMs }) => {
          this.#options.telemetry?.error({ stage: 'receiving', code: error.code, message: `${error.message}; retry ${attempt} in ${delayMs} ms`, discarded: 0 });
          this.#options.logger?.warn({ component: 'graph', code: error.code, attempt, delayMs, resource }, 'retrying Microsoft Graph call');
        },
      });
      next = page.nextLink === undefined ? undefined : this.#serviceUrl(page.nextLink);
      yield page;
    }
  }

  /** A nextLink Graph handed us, used verbatim; refused off graphRoot's origin, where the token must not go. */
  #serviceUrl(link: string): string {
    let url: URL;
    try {
      url = new URL(link);
    } catch {
      throw new GraphApiError('UNTRUSTED_URI', 'Microsoft Graph returned an @odata.nextLink that is not a URL', 0);
    }
    if (url.origin !== this.#origin) {
      throw new GraphApiError('UNTRUSTED_URI', `Microsoft Graph returned an @odata.nextLink on ${url.host}, outside graphRoot ${this.#origin}; the token is not sent there`, 0, {
        fix: 'check that graphRoot and cloud match the tenant',
      });
    }
    return link;
  }

  /** One GET: token, request, whole body; a 401 renews the token, twice at most. */
  async #exchange(resource: ServiceAnnouncementResource, url: string, signal: AbortSignal | undefined): Promise<Buffer> {
    for (let refreshes = 0; ; refreshes += 1) {
      const token = await this.#options.tokens.getToken({ abortSignal: signal });
      let response: Dispatcher.ResponseData;
      let body: Buffer;
      try {
        response = await request(url, {
          method: 'GET',
          dispatcher: this.#options.dispatcher,
          headers: {
            authorization: `Bearer ${token}`, accept: 'application/json',
            ...(this.#options.pageSize ? { prefer: `odata.maxpagesize=${this.#options.pageSize}` } : {}),
          },
          headersTimeout: this.#options.headersTimeoutMs ?? 60_000,
          bodyTimeout: this.#options.bodyTimeoutMs ?? 120_000,
          ...(signal ? { signal } : {}),
        });
        const bytes = await response.body.bytes();
        body = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      } catch (error) {
        if (signal?.aborted) throw signal.reason;
        throw transportError(error, url);
      }
      const date = typeof response.headers['date'] === 'string' ? Date.parse(response.headers['date']) : Number.NaN;
      if (!Number.isNaN(date)) this.#clockSkewMs = date + 500 - this.#now().getTime();
      if (response.statusCode < 300) {
        this.#options.telemetry?.received(0, body.length);
        return body;
      }
      const error = graphError(response.statusCode, body.toString('utf8'), resource, retryAfterMs(response.headers['retry-after'], Number.isNaN(date) ? Date.now() : date));
      if (error.code === graphUnauthorizedCode && refreshes < 2) {
        this.#options.tokens.invalidate(token);
        continue;
      }
      throw error;
    }
  }
}

function itemOf(value: unknown, bytes: Buffer, kind: AnnouncementKind): AnnouncementItem {
  const item = value as { id?: unknown; lastModifiedDateTime?: unknown } | null;
  if (typeof item?.id !== 'string' || typeof item.lastModifiedDateTime !== 'string' || Number.isNaN(Date.parse(item.lastModifiedDateTime))) {
    throw new GraphApiError('INVALID_BODY', `an item of serviceAnnouncement/${kind} had no id or lastModifiedDateTime`, 200, { retryable: true });
  }
  return { id: item.id, lastModifiedDateTime: item.lastModifiedDateTime, bytes };
}
