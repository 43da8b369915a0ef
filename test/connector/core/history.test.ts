import { describe, expect, it } from 'vitest';
import { applyHistoryChange, mergeIntervals, readHistory, subtractInterval } from '../../../connector/core/history.ts';

const at = '2026-12-01T00:00:00.000Z';

describe('a unit\'s history beyond the API\'s 7 days', () => {
  it('merges intervals that touch or overlap, and subtracts one from them', () => {
    expect(mergeIntervals([[30, 40], [0, 10], [10, 20], [35, 50], [60, 60]])).toEqual([[0, 20], [30, 50]]);
    expect(subtractInterval([[0, 20], [30, 50]], [15, 35])).toEqual([[0, 15], [35, 50]]);
    expect(subtractInterval([[0, 20]], [0, 20])).toEqual([]);
  });

  it('adds to do only the part of a gap never asked before, so a window read is never read again', () => {
    let state = applyHistoryChange(undefined, { gap: [0, 100] }, at);
    state = applyHistoryChange(state, { done: [[0, 40]], records: 7, queries: 2 }, at);
    state = applyHistoryChange(state, { gap: [0, 150] }, at);
    expect(state).toMatchObject({ asked: [[0, 150]], todo: [[40, 150]], records: 7, queries: 2 });
  });

  it('sets a range beyond the search\'s reach aside, and keeps or clears the query being paged and the last error', () => {
    let state = applyHistoryChange(undefined, { gap: [0, 100], paging: { from: 50, to: 60, queryId: 'q', records: 0 }, error: { code: 'X', message: 'm', at } }, at);
    state = applyHistoryChange(state, { unreachable: [[0, 20]] }, at);
    expect(state).toMatchObject({ todo: [[20, 100]], unreachable: [[0, 20]], paging: { queryId: 'q' }, error: { code: 'X' } });
    state = applyHistoryChange(state, { paging: null, error: null }, at);
    expect(state.paging).toBeUndefined();
    expect(state.error).toBeUndefined();
  });

  it('reads a stored state, and one edited into nonsense as none', () => {
    expect(readHistory(JSON.stringify({ asked: [[1, 2]], todo: [] }))).toMatchObject({ asked: [[1, 2]], records: 0, unreachable: [] });
    expect(readHistory('{"asked": 3}')).toBeUndefined();
    expect(readHistory('not json')).toBeUndefined();
  });
});
