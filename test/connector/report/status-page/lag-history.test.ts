import { describe, expect, it } from 'vitest';
import { LagHistory } from '../../../../connector/report/status-page/lag-history.ts';

const at = (minute: number) => new Date(Date.UTC(2026, 11, 1, 0, minute));

describe('lag history', () => {
  it('keeps the last samples of each unit, oldest first, one per interval (the newest is the last reading), bounded by its capacity', () => {
    const history = new LagHistory({ capacity: 3, intervalMs: 60_000 });
    expect(history.record(at(0), [['t/Audit.General', undefined]])).toBe(true);
    expect(history.of('t/Audit.General')).toEqual([]);
    // Within the interval: the newest sample is replaced, no new one.
    expect(history.record(at(0.5), [['t/Audit.General', 10], ['t/Audit.Exchange', 20]])).toBe(false);
    expect(history.of('t/Audit.General')).toEqual([{ at: at(0.5).getTime(), lagSeconds: 10 }]);
    expect(history.record(at(1), [['t/Audit.General', 11], ['t/Audit.Exchange', undefined]])).toBe(true);
    history.record(at(2), [['t/Audit.General', 12], ['u/DLP.All', 5]]);
    history.record(at(3), [['t/Audit.General', 13]]);
    expect(history.of('t/Audit.General')).toEqual([{ at: at(1).getTime(), lagSeconds: 11 }, { at: at(2).getTime(), lagSeconds: 12 }, { at: at(3).getTime(), lagSeconds: 13 }]);
    // The Exchange sample at 0 fell out of the ring; the ones without a lag are not points.
    expect(history.of('t/Audit.Exchange')).toEqual([]);
    expect(history.of('u/DLP.All')).toEqual([{ at: at(2).getTime(), lagSeconds: 5 }]);
    history.keepOnly(new Set(['t/Audit.General']));
    expect(history.of('u/DLP.All')).toEqual([]);
    expect(history.of('t/Audit.General')).toHaveLength(3);
  });
});
