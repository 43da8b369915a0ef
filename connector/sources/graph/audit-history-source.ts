/**
 * History beyond the Management Activity API's 7 days, read from the audit search (Microsoft Graph's audit log
 * query API) for one audit content type. A live pass that could not list as far back as the unit needed records the
 * gap in the unit's history (core/history.ts); a history pass reads what is still to do: windows of at most
 * --history-window hours, oldest first, each one query filtered to the content type's records, a few queries of the
 * tenant running at once (--history-queries), polled with a growing wait. A query that stopped at its record limit
 * is not read: its window is split in two and asked again. A query that failed is created again (three times).
 *
 * Exactly once across crashes: the query being paged, and its next page, are committed with each page's records;
 * a window is marked done with its last page. A restart resumes the stored query at its next page when Graph still
 * has it (or reads it again from its start: the window's record keys are kept until it is done, so repeats drop).
 * Records pass through the unit's one de-duplication, so what the live passes delivered too is delivered once.
 */
import type { ContentType } from '../../../contract/content-types.ts';
import type { SetAsideRecord } from '../../core/commit.ts';
import { toConnectorError, type ConnectorError } from '../../core/errors.ts';
import { subtractInterval, type HistoryChange, type HistoryPaging, type HistoryState, type Interval } from '../../core/history.ts';
import type { Slots } from '../../http/slots.ts';
import { sleep } from '../../http/sleep.ts';
import { failureOf, lastErrorOf, type Acknowledgement, type SourceContext, type SourceItem, type SourcePass } from '../source.ts';
import type { AuditQuery, AuditSearchApi } from './audit-search-client.ts';
import { contentTypeOfSearchRecord } from './audit-search-scope.ts';
import type { NotARecord } from './audit-search-records.ts';
import { graphForbiddenCode, GraphApiError } from './graph-errors.ts';

const minute = 60_000;
const hour = 60 * minute;
const day = 24 * hour;
/** Polls wait from --history-poll, doubling up to this. */
const longestPollMs = minute;
/** A query that failed is created again this many times before its window waits for the next pass. */
const queryAttempts = 3;
/** Windows are not split below this: a minute that still reaches the record limit is read as far as it goes. */
const smallestWindowMs = minute;

/** The audit search of one tenant, as the history of its audit content types reads it. */
export interface AuditHistory {
  readonly api: AuditSearchApi;
  /** The tenant's running queries (--history-queries), shared by its content types. */
  readonly slots: Slots;
  /** Graph refused the permission: the tenant's units stop asking until the process restarts (said once). */
  forbidden?: ConnectorError | undefined;
}

export interface HistorySource {
  readonly contentType: ContentType;
  /** A pass over what `state` has still to read; undefined when nothing is. */
  pass(state: HistoryState | undefined, context: SourceContext): SourcePass | undefined;
}

/** One page (or a window's start, or its end) of the audit search, with what it changes in the unit's history. */
interface HistoryItem extends SourceItem {
  readonly change: HistoryChange;
  readonly rejected?: readonly NotARecord[] | undefined;
  readonly queryId?: string | undefined;
}

type Prepared =
  | { readonly kind: 'ready'; readonly window: Interval; readonly query: AuditQuery; readonly resume?: HistoryPaging | undefined }
  | { readonly kind: 'split'; readonly window: Interval }
  | { readonly kind: 'failed'; readonly window: Interval; readonly error: ConnectorError };

/** `history` is asked for only when there is some to read: a fleet of tenants without any makes no Graph client. */
export function auditHistorySource(contentType: ContentType, history: () => AuditHistory): HistorySource {
  return {
    contentType,
    pass: (state, context) => {
      if (!state || (state.todo.length === 0 && !state.paging)) return undefined;
      const search = history();
      return search.forbidden ? undefined : new HistoryPass(contentType, search, context, state);
    },
  };
}

class HistoryPass implements SourcePass<HistoryItem> {
  readonly listedFrom = undefined;
  readonly checkpoint = undefined;
  readonly errors: ConnectorError[] = [];
  /** Queries created since the last commit (counted with the next one). */
  #created = 0;
  #records = 0;
  #lastError: ConnectorError | undefined;
  readonly #started = performance.now();

  private readonly contentType: ContentType;
  private readonly history: AuditHistory;
  private readonly context: SourceContext;
  private readonly state: HistoryState;

  constructor(contentType: ContentType, history: AuditHistory, context: SourceContext, state: HistoryState) {
    this.contentType = contentType;
    this.history = history;
    this.context = context;
    this.state = state;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<HistoryItem> {
    const { context, state } = this;
    const { settings, signal } = context;
    const reach = context.now().getTime() - settings.historyReachDays * day;
    const beyond = state.todo.filter(([from]) => from < reach);
    if (beyond.length > 0) {
      const range: Interval = [beyond[0]![0], Math.min(reach, Math.max(...beyond.map(([, to]) => to)))];
      context.logger.warn({ component: 'history', contentType: this.contentType, from: new Date(range[0]).toISOString(), reachableFrom: new Date(reach).toISOString() },
        `records before ${new Date(reach).toISOString()} are beyond the audit search's ${settings.historyReachDays} days (--history-reach; Audit Standard keeps 180, Audit Premium a year or more): they are reachable from then on`);
      yield { records: [], bytes: 0, cut: true, change: { unreachable: [range] } };
    }
    const queue: Array<{ window: Interval; resume?: HistoryPaging | undefined }> = [];
    const { paging } = state;
    if (paging) queue.push({ window: [paging.from, paging.to], resume: paging });
    // The rest of what is to do, around the query being read (a split half of a day leaves the other half to do).
    for (const [from, to] of paging ? subtractInterval(state.todo, [paging.from, paging.to]) : state.todo) {
      for (let start = Math.max(from, reach); start < to; start += settings.historyWindowHours * hour) queue.push({ window: [start, Math.min(to, start + settings.historyWindowHours * hour)] });
    }
    // Queries are prepared ahead (created and polled, a few of the tenant at once) while the oldest ready one is read.
    const ahead: Array<Promise<Prepared>> = [];
    const lookahead = Math.max(1, settings.historyQueries);
    try {
      for (;;) {
        while (ahead.length < lookahead && queue.length > 0) {
          const next = queue.shift()!;
          const prepared = this.#prepare(next.window, next.resume);
          prepared.catch(() => {});
          ahead.push(prepared);
        }
        const prepared = await ahead.shift();
        if (prepared === undefined) break;
        if (prepared.kind === 'split') {
          const [from, to] = prepared.window;
          const middle = from + Math.floor((to - from) / 2 / 1000) * 1000;
          queue.unshift({ window: [from, middle] }, { window: [middle, to] });
          context.logger.info({ component: 'history', contentType: this.contentType, from: new Date(from).toISOString(), to: new Date(to).toISOString() }, 'an audit search query reached its record limit: its window is split in two and asked again');
          continue;
        }
        if (prepared.kind === 'failed') {
          if (this.#failed(prepared.error, prepared.window)) break;
          continue;
        }
        try {
          yield* this.#read(prepared);
        } catch (error) {
          if (signal.aborted) throw error;
          if (this.#failed(toConnectorError(error), prepared.window)) break;
        }
      }
    } finally {
      await Promise.allSettled(ahead);
    }
  }

  /** The window's query, created (or the stored one reused) and polled until it succeeded, split, or failed for good. */
  async #prepare(window: Interval, resume: HistoryPaging | undefined): Promise<Prepared> {
    const { api, slots } = this.history;
    const { signal } = this.context;
    if (resume) {
      const stored = await api.get(resume.queryId, { abortSignal: signal }).catch((error: unknown) => {
        if (signal.aborted) throw error;
        return undefined;
      });
      if (stored?.status === 'succeeded' && !stored.limitReached) return { kind: 'ready', window, query: stored, resume };
    }
    let last: ConnectorError | undefined;
    for (let attempt = 1; attempt <= queryAttempts; attempt += 1) {
      try {
        await slots.acquire(signal);
        let query: AuditQuery;
        try {
          query = await this.history.api.create(this.contentType, window, { abortSignal: signal });
          this.#created += 1;
          query = await this.#untilDone(query);
        } finally {
          slots.release();
        }
        if (query.status === 'succeeded') {
          return query.limitReached && window[1] - window[0] > smallestWindowMs ? { kind: 'split', window } : { kind: 'ready', window, query };
        }
        last = new GraphApiError('HISTORY_QUERY_FAILED', `the audit search query for ${this.contentType} from ${new Date(window[0]).toISOString()} to ${new Date(window[1]).toISOString()} ended ${query.status}`, 200, {
          fix: 'none needed if it passes: the window is asked again (a query that fails every time: check the tenant\'s audit search in the Microsoft Purview portal)',
        });
      } catch (error) {
        if (signal.aborted) throw error;
        last = toConnectorError(error);
        // Only a query that ended failed is worth creating again at once; the retry layer already repeated the rest.
        if (!(last instanceof GraphApiError) || last.code !== 'HISTORY_QUERY_FAILED') break;
      }
    }
    return { kind: 'failed', window, error: last! };
  }

  async #untilDone(created: AuditQuery): Promise<AuditQuery> {
    const { signal, settings } = this.context;
    let query = created;
    for (let waitMs = settings.historyPollMs; query.status === 'notStarted' || query.status === 'running'; waitMs = Math.min(waitMs * 2, longestPollMs)) {
      await sleep(waitMs, signal);
      const seen = await this.history.api.get(query.id, { abortSignal: signal });
      if (seen === undefined) return { ...query, status: 'failed' };
      query = seen;
    }
    return query;
  }

  /** The query's pages as items: the window's start (its query is committed before any of its records), its pages, its end. */
  async *#read(prepared: Extract<Prepared, { kind: 'ready' }>): AsyncGenerator<HistoryItem> {
    const { window, query, resume } = prepared;
    const { signal } = this.context;
    const paging = (nextLink: string | undefined, records: number): HistoryPaging => ({ from: window[0], to: window[1], queryId: query.id, ...(nextLink ? { nextLink } : {}), records });
    let records = resume?.queryId === query.id ? resume.records : 0;
    let nextLink = resume?.queryId === query.id ? resume.nextLink : undefined;
    if (resume?.queryId !== query.id) yield { records: [], bytes: 0, cut: true, change: { paging: paging(undefined, 0) } };
    let fromStart = nextLink === undefined;
    for (;;) {
      try {
        for await (const page of this.history.api.pages(query.id, nextLink, { abortSignal: signal })) {
          records += page.records.length;
          const own = page.records.filter((record) => contentTypeOfSearchRecord(record.service, record.recordType) === this.contentType);
          this.#records += own.length;
          const bytes = own.reduce((sum, record) => sum + record.bytes.length, 0);
          nextLink = page.nextLink;
          fromStart = false;
          const change: HistoryChange = page.nextLink === undefined ? { done: [window], paging: null, records: own.length } : { paging: paging(page.nextLink, records), records: own.length };
          yield { records: own, bytes, cut: true, change, rejected: page.rejected, queryId: query.id };
        }
        return;
      } catch (error) {
        // A stored next page Graph no longer honours: the query is read again from its first page (the repeats drop).
        if (signal.aborted || fromStart || !(error instanceof GraphApiError) || error.status < 400 || error.status >= 500 || [401, 403, 429].includes(error.status)) throw error;
        nextLink = undefined;
        fromStart = true;
      }
    }
  }

  /** True when the pass must stop: Graph refused the permission (said once per tenant; the run goes on with what the API lists). */
  #failed(failure: ConnectorError, window: Interval): boolean {
    const { logger, reporter } = this.context;
    const error = failureOf(failure, this.context);
    this.#lastError = error;
    reporter.error({ stage: 'receiving', code: error.code, message: error.message, discarded: 0 });
    if (error.code === graphForbiddenCode) {
      if (!this.history.forbidden) {
        this.history.forbidden = error;
        logger.warn({ component: 'history', code: error.code, reason: error.toLine() }, 'history beyond the API\'s 7 days cannot be read from the audit search: collection goes on with what the Management Activity API lists, and the history waits for the permission');
      }
      return true;
    }
    this.errors.push(error);
    logger.error({ component: 'history', contentType: this.contentType, window: { from: new Date(window[0]).toISOString(), to: new Date(window[1]).toISOString() }, code: error.code, reason: error.toLine() }, 'a window of history could not be read: it stays to do, and the next history pass asks again');
    return false;
  }

  acknowledge(items: readonly HistoryItem[], now: Date): Acknowledgement {
    const setAside: SetAsideRecord[] = items.flatMap((item) => (item.rejected ?? []).map((element) => ({ contentId: `audit-search:${item.queryId}`, ...element })));
    if (setAside.length > 0) {
      this.context.logger.warn({ component: 'history', contentType: this.contentType, setAside: setAside.length }, `audit search records without an audit record (no auditData with a string Id) set aside to ${this.context.deadLetters}`);
    }
    return {
      records: [], counts: { setAside: setAside.length },
      change: () => ({
        contentType: this.contentType, at: now.toISOString(),
        history: { ...foldChanges(items.map((item) => item.change)), queries: this.#takeCreated() },
        ...(setAside.length > 0 ? { setAside } : {}),
      }),
    };
  }

  async end(): Promise<Acknowledgement> {
    const now = this.context.now();
    const error = this.#lastError;
    this.context.logger.info({ component: 'history', contentType: this.contentType, records: this.#records, seconds: Math.round(performance.now() - this.#started) / 1000, errors: this.errors.length },
      'history pass ended');
    return {
      records: [], counts: {},
      change: () => ({
        contentType: this.contentType, at: now.toISOString(),
        history: { queries: this.#takeCreated(), error: error ? lastErrorOf(error, now) : null },
      }),
    };
  }

  #takeCreated(): number {
    const created = this.#created;
    this.#created = 0;
    return created;
  }
}

/** The changes of a batch's items as one (a batch holds one item: each is cut; folded all the same). */
function foldChanges(changes: readonly HistoryChange[]): HistoryChange {
  return changes.reduce<HistoryChange>((all, change) => ({
    ...all, ...change,
    done: [...all.done ?? [], ...change.done ?? []],
    unreachable: [...all.unreachable ?? [], ...change.unreachable ?? []],
    records: (all.records ?? 0) + (change.records ?? 0),
  }), {});
}
