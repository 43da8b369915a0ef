/**
 * History beyond the Management Activity API's 7 days, as a unit's state keeps it: the time ranges a live pass
 * could not list (asked), the part of them not yet read from the audit search (todo), the query being paged, and
 * what the search delivered. A commit says what changed (a gap found, a window done, a page read); the store works
 * out the new state from the one it holds (applyHistoryChange), so a live pass and a history pass of the same unit
 * can commit in any order without undoing each other.
 */

/** [from, to) in epoch ms. */
export type Interval = readonly [number, number];

/** A query of the audit search whose records are being read: resumed after a restart instead of created again. */
export interface HistoryPaging {
  readonly from: number;
  readonly to: number;
  readonly queryId: string;
  /** The next page to read; absent before the first page was committed. */
  readonly nextLink?: string | undefined;
  /** Records of this query committed so far (before de-duplication). */
  readonly records: number;
}

export interface HistoryState {
  /** Every range a live pass found beyond the API's reach, merged, oldest first. */
  readonly asked: readonly Interval[];
  /** What of `asked` is still to be read from the audit search. */
  readonly todo: readonly Interval[];
  readonly paging?: HistoryPaging | undefined;
  /** Records the audit search delivered (after de-duplication) and queries created, since the start. */
  readonly records: number;
  readonly queries: number;
  /** Ranges given up because they lie beyond what the search keeps. */
  readonly unreachable: readonly Interval[];
  /** The last failure of a history pass (cleared by one that read everything it could). */
  readonly error?: { readonly code: string; readonly message: string; readonly at: string } | undefined;
  readonly updatedAt?: string | undefined;
}

/** What one commit changes in a unit's history; every member is optional. */
export interface HistoryChange {
  /** A range a live pass could not list: added to `asked`, and its part not asked before to `todo`. */
  readonly gap?: Interval;
  /** Windows read to their end: removed from `todo`. */
  readonly done?: readonly Interval[];
  /** Ranges beyond what the search keeps: removed from `todo`, kept in `unreachable`. */
  readonly unreachable?: readonly Interval[];
  /** The query now paged (null: none). */
  readonly paging?: HistoryPaging | null;
  readonly records?: number;
  readonly queries?: number;
  /** null clears it. */
  readonly error?: HistoryState['error'] | null;
}

export const emptyHistory: HistoryState = { asked: [], todo: [], records: 0, queries: 0, unreachable: [] };

/** Intervals sorted and merged (touching ones joined), empty ones dropped. */
export function mergeIntervals(intervals: readonly Interval[]): Interval[] {
  const sorted = intervals.filter(([from, to]) => to > from).toSorted((a, b) => a[0] - b[0]);
  const merged: Array<[number, number]> = [];
  for (const [from, to] of sorted) {
    const last = merged.at(-1);
    if (last && from <= last[1]) last[1] = Math.max(last[1], to);
    else merged.push([from, to]);
  }
  return merged;
}

/** `intervals` less `cut`. */
export function subtractInterval(intervals: readonly Interval[], cut: Interval): Interval[] {
  const [cutFrom, cutTo] = cut;
  return intervals.flatMap(([from, to]): Interval[] => {
    if (cutTo <= from || cutFrom >= to) return [[from, to]];
    const parts: Interval[] = [[from, Math.min(to, cutFrom)], [Math.max(from, cutTo), to]];
    return parts.filter(([a, b]) => b > a);
  });
}

/** The state after `change`, worked out from `state` (undefined before the unit's history began). */
export function applyHistoryChange(state: HistoryState | undefined, change: HistoryChange, at: string): HistoryState {
  const current = state ?? emptyHistory;
  let { asked, todo, unreachable } = current;
  if (change.gap) {
    const fresh = mergeIntervals(asked).reduce<Interval[]>((rest, known) => rest.flatMap((part) => subtractInterval([part], known)), [change.gap]);
    asked = mergeIntervals([...asked, change.gap]);
    todo = mergeIntervals([...todo, ...fresh]);
  }
  for (const window of [...change.done ?? [], ...change.unreachable ?? []]) todo = subtractInterval(todo, window);
  if (change.unreachable?.length) unreachable = mergeIntervals([...unreachable, ...change.unreachable]);
  const paging = change.paging === undefined ? current.paging : change.paging ?? undefined;
  const error = change.error === undefined ? current.error : change.error ?? undefined;
  return {
    asked, todo, unreachable,
    ...(paging ? { paging } : {}),
    records: current.records + (change.records ?? 0),
    queries: current.queries + (change.queries ?? 0),
    ...(error ? { error } : {}),
    updatedAt: at,
  };
}

/** A stored state; an unreadable one (edited by hand) reads as none rather than stopping a run or `status`. */
export function readHistory(text: string | null | undefined): HistoryState | undefined {
  if (!text) return undefined;
  try {
    const state = JSON.parse(text) as HistoryState;
    return Array.isArray(state?.asked) && Array.isArray(state.todo) ? { ...emptyHistory, ...state } : undefined;
  } catch {
    return undefined;
  }
}

/** Where forgetting delivered record keys must stop: a query being paged may be read again from its start after a crash. */
export function keepRecordsFrom(state: HistoryState | undefined): number | undefined {
  return state?.paging?.from;
}
