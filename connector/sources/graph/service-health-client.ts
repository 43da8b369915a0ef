/**
 * Microsoft Graph's service announcements through the authorized exchange (http/exchange.ts): a bearer token for the
 * Graph audience of the configured cloud (`${graphRoot}/.default`, its own msal token provider with the app's
 * credential); 429 and 503/504 wait what `Retry-After` asks (capped by the retry policy), other 5xx and cut bodies back
 * off with jitter. `@odata.nextLink` is followed verbatim, and only ever on graphRoot's origin (the token goes nowhere else).
 */
import type { ApiCallOptions } from '../activity-api/activity-api.ts';
import { Exchange, type ExchangeOptions } from '../../http/exchange.ts';
import { graphError, GraphApiError, graphUnauthorizedCode, type ServiceAnnouncementResource } from './graph-errors.ts';
import { graphPage, graphV1Url, nextPageOf, type GraphPage } from './graph-page.ts';
import type { AnnouncementItem, AnnouncementKind, ServiceHealthApi, ServiceHealthOverview } from './service-health-api.ts';

/** The token source (for Graph's audience), the connection pool, retry policy, clock, logger and telemetry. */
export interface ServiceHealthClientOptions extends Pick<ExchangeOptions, 'tokens' | 'dispatcher' | 'retry' | 'now' | 'logger' | 'telemetry'> {
  /** `https://graph.microsoft.com` (or the cloud's, or a stand-in's): v1.0 is appended. */
  readonly graphRoot: string;
  /** Items per page asked for (`Prefer: odata.maxpagesize`); Graph's default is 100, its maximum 1,000. */
  readonly pageSize?: number;
}

/** Graph's DateTimeOffset literal in a $filter: ISO UTC, no quotes. */
export function graphTime(date: Date): string {
  return date.toISOString().replace(/\.000Z$/, 'Z');
}

export class ServiceHealthClient implements ServiceHealthApi {
  readonly #options: ServiceHealthClientOptions;
  readonly #exchange: Exchange;
  readonly #base: string;

  constructor(options: ServiceHealthClientOptions) {
    this.#options = options;
    this.#base = graphV1Url(options.graphRoot, 'admin/serviceAnnouncement');
    this.#exchange = new Exchange({ ...options, root: options.graphRoot, unauthorizedCode: graphUnauthorizedCode, component: 'graph', name: 'Microsoft Graph' });
  }

  get clockSkewMs(): number {
    return this.#exchange.clockSkewMs;
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
    await this.#page(resource, url, options.abortSignal, false);
  }

  async *#pages(resource: ServiceAnnouncementResource, first: string, options: ApiCallOptions): AsyncGenerator<GraphPage> {
    let next: string | undefined = first;
    while (next !== undefined) {
      const url: string = next;
      const page = await this.#page(resource, url, options.abortSignal, true);
      next = nextPageOf(page, this.#exchange);
      yield page;
    }
  }

  /** One page of `resource`, its bytes counted as received; `logged`: its retries are logged. */
  #page(resource: ServiceAnnouncementResource, url: string, signal: AbortSignal | undefined, logged: boolean): Promise<GraphPage> {
    const pageSize = this.#options.pageSize;
    return this.#exchange.call({
      url, signal,
      ...(pageSize ? { headers: { prefer: `odata.maxpagesize=${pageSize}` } } : {}),
      refusal: (status, text, retryAfterMs) => graphError(status, text, resource, retryAfterMs),
      ...(logged ? { log: () => ({ resource }) } : {}),
    }, (answer) => {
      this.#options.telemetry?.received(0, answer.body.length);
      return graphPage(answer.body, resource);
    });
  }
}

function itemOf(value: unknown, bytes: Buffer, kind: AnnouncementKind): AnnouncementItem {
  const item = value as { id?: unknown; lastModifiedDateTime?: unknown } | null;
  if (typeof item?.id !== 'string' || typeof item.lastModifiedDateTime !== 'string' || Number.isNaN(Date.parse(item.lastModifiedDateTime))) {
    throw new GraphApiError('INVALID_BODY', `an item of serviceAnnouncement/${kind} had no id or lastModifiedDateTime`, 200, { retryable: true });
  }
  return { id: item.id, lastModifiedDateTime: item.lastModifiedDateTime, bytes };
}
