/**
 * Microsoft Graph's audit log query API (Microsoft Purview's audit search), through the authorized exchange
 * (http/exchange.ts) with the app's Graph token: a query is created for a window of one content type's records,
 * polled until it succeeded, then its records are paged by `@odata.nextLink` (followed verbatim, on graphRoot's origin
 * only). 429 and 503/504 wait what `Retry-After` asks; other 5xx and cut bodies back off with jitter (the retry policy).
 */
import type { ContentType } from '../../../contract/content-types.ts';
import type { Interval } from '../../core/history.ts';
import { Exchange, type Answer, type ExchangeOptions } from '../../http/exchange.ts';
import type { ApiCallOptions } from '../activity-api/activity-api.ts';
import { queryFiltersOf } from './audit-search-scope.ts';
import { searchRecordsOf, type NotARecord, type SearchRecord } from './audit-search-records.ts';
import { graphError, GraphApiError, graphUnauthorizedCode } from './graph-errors.ts';
import { graphPage, graphV1Url, nextPageOf } from './graph-page.ts';
import { graphTime } from './service-health-client.ts';

/** A query as Graph reports it. */
export interface AuditQuery {
  readonly id: string;
  /** notStarted, running, succeeded, failed or cancelled. */
  readonly status: string;
  /** The query stopped at its record limit: it returned only part of its window. */
  readonly limitReached: boolean;
}

export interface AuditSearchPage {
  readonly records: readonly SearchRecord[];
  readonly rejected: readonly NotARecord[];
  readonly bytes: number;
  /** The page after this one; undefined on the last. */
  readonly nextLink: string | undefined;
}

/** What the history source asks of the audit search (the client below, or a test's fake). */
export interface AuditSearchApi {
  /** A new query for `contentType`'s records created in [from, to). */
  create(contentType: ContentType, window: Interval, options?: ApiCallOptions): Promise<AuditQuery>;
  /** The query's state; undefined when Graph no longer knows it (404). */
  get(id: string, options?: ApiCallOptions): Promise<AuditQuery | undefined>;
  /** The succeeded query's records, page by page, from its first page or from `nextLink`. */
  pages(id: string, nextLink: string | undefined, options?: ApiCallOptions): AsyncIterable<AuditSearchPage>;
  /** Resolves when the app may use the audit search; rejects GRAPH_FORBIDDEN when it lacks AuditLogsQuery.Read.All. */
  probe(options?: ApiCallOptions): Promise<void>;
}

export interface AuditSearchClientOptions extends Pick<ExchangeOptions, 'tokens' | 'dispatcher' | 'retry' | 'now' | 'logger' | 'telemetry' | 'onAnswer'> {
  /** `https://graph.microsoft.com` (or a stand-in's): v1.0 is appended. */
  readonly graphRoot: string;
  /** Names the queries (their displayName): the tenant's id. */
  readonly tenant: string;
}

export class AuditSearchClient implements AuditSearchApi {
  readonly #options: AuditSearchClientOptions;
  readonly #exchange: Exchange;
  readonly #queries: string;

  constructor(options: AuditSearchClientOptions) {
    this.#options = options;
    this.#queries = graphV1Url(options.graphRoot, 'security/auditLog/queries');
    this.#exchange = new Exchange({ ...options, root: options.graphRoot, unauthorizedCode: graphUnauthorizedCode, component: 'graph', name: 'Microsoft Graph audit search' });
  }

  async create(contentType: ContentType, [from, to]: Interval, options: ApiCallOptions = {}): Promise<AuditQuery> {
    const body = {
      displayName: `o365-connector ${this.#options.tenant} ${contentType} ${graphTime(new Date(from))}..${graphTime(new Date(to))}`,
      filterStartDateTime: graphTime(new Date(from)),
      filterEndDateTime: graphTime(new Date(to)),
      ...queryFiltersOf(contentType),
    };
    return this.#call('POST', this.#queries, 'auditLog/queries', options, (answer) => queryOf(answer.text), JSON.stringify(body));
  }

  async get(id: string, options: ApiCallOptions = {}): Promise<AuditQuery | undefined> {
    try {
      return await this.#call('GET', `${this.#queries}/${encodeURIComponent(id)}`, 'auditLog/queries', options, (answer) => queryOf(answer.text));
    } catch (error) {
      if (error instanceof GraphApiError && error.status === 404) return undefined;
      throw error;
    }
  }

  async *pages(id: string, nextLink: string | undefined, options: ApiCallOptions = {}): AsyncIterable<AuditSearchPage> {
    // A stored next page is checked like one Graph just handed back: the token goes to graphRoot's origin only.
    let next: string | undefined = nextLink === undefined ? `${this.#queries}/${encodeURIComponent(id)}/records`
      : this.#exchange.onOrigin(nextLink, () => new GraphApiError('UNTRUSTED_URI', 'a stored @odata.nextLink of the audit search is not on graphRoot\'s origin', 0, { fix: 'check that graphRoot and cloud match the tenant' }));
    while (next !== undefined) {
      const page = await this.#call('GET', next, 'auditLog/records', options, (answer) => {
        this.#options.telemetry?.received(0, answer.body.length);
        return graphPage(answer.body, 'audit search records');
      });
      next = nextPageOf(page, this.#exchange);
      const { records, rejected } = searchRecordsOf(page);
      yield { records, rejected, bytes: records.reduce((sum, record) => sum + record.bytes.length, 0), nextLink: next };
    }
  }

  async probe(options: ApiCallOptions = {}): Promise<void> {
    await this.#call('GET', `${this.#queries}?${new URLSearchParams({ $top: '1' }).toString()}`, 'auditLog/queries', options, () => undefined);
  }

  /** One call of the audit search at background priority, its refusals read as Graph's, its retries logged with `resource`. */
  #call<T>(method: 'GET' | 'POST', url: string, resource: string, options: ApiCallOptions, read: (answer: Answer) => T, json?: string): Promise<T> {
    return this.#exchange.call({
      method, url, json, signal: options.abortSignal, priority: 'background',
      refusal: (status, text, retryAfterMs) => graphError(status, text, 'auditLog', retryAfterMs),
      log: () => ({ resource }),
    }, read);
  }
}

function queryOf(text: string): AuditQuery {
  let value: Record<string, unknown> | null;
  try {
    value = JSON.parse(text) as Record<string, unknown> | null;
  } catch {
    throw new GraphApiError('INVALID_BODY', 'an audit search query answer was not complete JSON', 200, { retryable: true });
  }
  if (typeof value?.id !== 'string' || typeof value.status !== 'string') {
    throw new GraphApiError('INVALID_BODY', 'an audit search query answer had no id or status', 200, { retryable: true });
  }
  const { recordCountLimit: limit, approximateReturnedRecordCount: returned, isRecordCountLimitEnabled: enabled } = value;
  return { id: value.id, status: value.status, limitReached: enabled !== false && typeof limit === 'number' && typeof returned === 'number' && returned >= limit };
}
