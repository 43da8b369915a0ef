/**
 * The history pass against a scripted audit search: which queries it creates, reuses, splits and creates again,
 * and what each commit says about the unit's history. (test/e2e/history.test.ts runs it against the stand-in.)
 */
import { describe, expect, it } from 'vitest';
import type { ContentType } from '../../../../contract/content-types.ts';
import { defaultRunSettings } from '../../../../connector/config/settings.ts';
import { applyHistoryChange, type HistoryState, type Interval } from '../../../../connector/core/history.ts';
import { Slots } from '../../../../connector/http/slots.ts';
import { Telemetry } from '../../../../connector/observe/telemetry.ts';
import { auditHistorySource, type AuditHistory } from '../../../../connector/sources/graph/audit-history-source.ts';
import type { AuditQuery, AuditSearchApi, AuditSearchPage } from '../../../../connector/sources/graph/audit-search-client.ts';
import { GraphApiError } from '../../../../connector/sources/graph/graph-errors.ts';
import type { SourceContext, SourceItem } from '../../../../connector/sources/source.ts';
import { quietLogger } from '../../../e2e/support.ts';

const hour = 3_600_000;
const now = new Date('2026-12-06T00:00:00Z');
const from = Date.parse('2026-11-20T00:00:00Z');

/** A scripted search: each window holds `perHour` records an hour; a query over more than `limit` reaches it. */
class ScriptedSearch implements AuditSearchApi {
  readonly created: Interval[] = [];
  readonly pagedFrom: Array<string | undefined> = [];
  failNext = 0;
  forbidden = false;
  readonly #queries = new Map<string, { window: Interval; status: string }>();
  readonly perHour: number;
  readonly limit: number;
  readonly pageSize = 5;
  constructor(perHour = 2, limit = 1000) {
    this.perHour = perHour;
    this.limit = limit;
  }

  #count([start, end]: Interval): number {
    return Math.round((end - start) / hour) * this.perHour;
  }

  async create(_type: ContentType, window: Interval): Promise<AuditQuery> {
    if (this.forbidden) throw new GraphApiError('GRAPH_FORBIDDEN', 'the app lacks AuditLogsQuery.Read.All', 403, { fix: 'pulumi config set o365-connector:auditSearch true' });
    this.created.push(window);
    const id = `q${this.#queries.size + 1}`;
    const status = this.failNext > 0 ? 'failed' : 'succeeded';
    if (this.failNext > 0) this.failNext -= 1;
    this.#queries.set(id, { window, status });
    return { id, status: 'notStarted', limitReached: false };
  }

  async get(id: string): Promise<AuditQuery | undefined> {
    const query = this.#queries.get(id);
    return query && { id, status: query.status, limitReached: this.#count(query.window) > this.limit };
  }

  async *pages(id: string, nextLink: string | undefined): AsyncIterable<AuditSearchPage> {
    this.pagedFrom.push(nextLink);
    const { window } = this.#queries.get(id)!;
    const total = this.#count(window);
    for (let offset = nextLink ? Number(nextLink.split('=')[1]) : 0; offset < total; offset += this.pageSize) {
      const records = Array.from({ length: Math.min(this.pageSize, total - offset) }, (_, i) => {
        const text = `{"Id":"${window[0]}-${offset + i}","CreationTime":"${new Date(window[0]).toISOString().slice(0, 19)}","Workload":"Exchange"}`;
        return { id: `${window[0]}-${offset + i}`, creationTime: new Date(window[0]).toISOString().slice(0, 19), bytes: Buffer.from(text), service: 'Exchange', recordType: 'exchangeItem' };
      });
      const next = offset + this.pageSize < total ? `https://graph/next?skip=${offset + this.pageSize}` : undefined;
      yield { records, rejected: [], bytes: records.reduce((n, r) => n + r.bytes.length, 0), nextLink: next };
    }
  }

  async probe(): Promise<void> {}
}

function contextOf(): SourceContext {
  return {
    settings: { ...defaultRunSettings, historyPollMs: 100, historyWindowHours: 24, historyQueries: 2 },
    logger: quietLogger().logger, reporter: new Telemetry().component('collector', 'source'), signal: new AbortController().signal,
    since: new Date(from), now: () => now, delivered: async () => new Set(), deadLetters: 'the dead letters',
  };
}

/** Runs a pass as the pipeline would (each item acknowledged and its change applied); the records and the state after it. */
async function runHistory(search: ScriptedSearch, state: HistoryState, context = contextOf()): Promise<{ records: string[]; state: HistoryState; history: AuditHistory }> {
  const history: AuditHistory = { api: search, slots: new Slots(2) };
  const pass = auditHistorySource('Audit.Exchange', () => history).pass(state, context)!;
  const records: string[] = [];
  let after = state;
  for await (const item of pass as AsyncIterable<SourceItem>) {
    records.push(...item.records.map((record) => record.id!));
    const change = pass.acknowledge([item], now).change();
    if (change.history) after = applyHistoryChange(after, change.history, change.at);
  }
  const last = (await pass.end()).change();
  if (last.history) after = applyHistoryChange(after, last.history, last.at);
  return { records, state: after, history };
}

const gap = (hours: number) => applyHistoryChange(undefined, { gap: [from, from + hours * hour] }, now.toISOString());

describe('a history pass', () => {
  it('reads a gap in windows of a day, oldest first, and marks each done with its last page', async () => {
    const search = new ScriptedSearch();
    const { records, state } = await runHistory(search, gap(60));
    expect(search.created).toEqual([[from, from + 24 * hour], [from + 24 * hour, from + 48 * hour], [from + 48 * hour, from + 60 * hour]]);
    expect(records).toHaveLength(120);
    expect(new Set(records).size).toBe(120);
    expect(state).toMatchObject({ todo: [], records: 120, queries: 3 });
    expect(state.paging).toBeUndefined();
  });

  it('splits a window whose query reached its record limit, and asks again for each half', async () => {
    const search = new ScriptedSearch(2, 30);
    const { records, state } = await runHistory(search, gap(24));
    expect(search.created).toEqual([[from, from + 24 * hour], [from, from + 12 * hour], [from + 12 * hour, from + 24 * hour]]);
    expect(records).toHaveLength(48);
    expect(state).toMatchObject({ todo: [], queries: 3 });
  });

  it('creates a failed query again, and after three failures leaves its window to do with the error', async () => {
    const search = new ScriptedSearch();
    search.failNext = 2;
    expect((await runHistory(search, gap(24))).state).toMatchObject({ todo: [], queries: 3 });
    const failing = new ScriptedSearch();
    failing.failNext = 3;
    const { state } = await runHistory(failing, gap(24));
    expect(state.todo).toEqual([[from, from + 24 * hour]]);
    expect(state.error?.code).toBe('HISTORY_QUERY_FAILED');
  });

  it('resumes the query it was reading at its next page, without creating it again', async () => {
    const search = new ScriptedSearch();
    const first = await search.create('Audit.Exchange', [from, from + 24 * hour]);
    search.created.length = 0;
    const state = applyHistoryChange(gap(24), { paging: { from, to: from + 24 * hour, queryId: first.id, nextLink: 'https://graph/next?skip=20', records: 20 } }, now.toISOString());
    const { records, state: after } = await runHistory(search, state);
    expect(search.created).toEqual([]);
    expect(search.pagedFrom).toEqual(['https://graph/next?skip=20']);
    expect(records).toHaveLength(28);
    expect(after).toMatchObject({ todo: [] });
  });

  it('resumes a split half it was reading and reads the other half of that day in the same pass', async () => {
    const search = new ScriptedSearch();
    const half = await search.create('Audit.Exchange', [from, from + 12 * hour]);
    search.created.length = 0;
    const state = applyHistoryChange(gap(48), { paging: { from, to: from + 12 * hour, queryId: half.id, nextLink: 'https://graph/next?skip=10', records: 10 } }, now.toISOString());
    const { records, state: after } = await runHistory(search, state);
    expect(search.created).toEqual([[from + 12 * hour, from + 36 * hour], [from + 36 * hour, from + 48 * hour]]);
    expect(records).toHaveLength(24 - 10 + 72);
    expect(after.todo).toEqual([]);
  });

  it('asks for no audit search client while the unit has no history to read', () => {
    let made = 0;
    const source = auditHistorySource('Audit.Exchange', () => { made += 1; return { api: new ScriptedSearch(), slots: new Slots(1) }; });
    expect(source.pass(undefined, contextOf())).toBeUndefined();
    expect(source.pass(applyHistoryChange(gap(24), { done: [[from, from + 24 * hour]] }, now.toISOString()), contextOf())).toBeUndefined();
    expect(made).toBe(0);
    expect(source.pass(gap(24), contextOf())).toBeDefined();
    expect(made).toBe(1);
  });

  it('stops at a refused permission, says it once for the tenant, and leaves the range to do', async () => {
    const search = new ScriptedSearch();
    search.forbidden = true;
    const { state, history } = await runHistory(search, gap(48));
    expect(state.todo).toEqual([[from, from + 48 * hour]]);
    expect(history.forbidden?.code).toBe('GRAPH_FORBIDDEN');
    expect(auditHistorySource('Audit.Exchange', () => history).pass(state, contextOf())).toBeUndefined();
  });

  it('sets aside what lies beyond the search\'s reach', async () => {
    const search = new ScriptedSearch();
    const context = contextOf();
    const { state } = await runHistory(search, gap(48), { ...context, settings: { ...context.settings, historyReachDays: 15 } });
    const reach = now.getTime() - 15 * 24 * hour;
    expect(state.unreachable).toEqual([[from, reach]]);
    expect(search.created[0]![0]).toBe(reach);
    expect(state.todo).toEqual([]);
  });
});
