import { describe, expect, it } from 'vitest';
import { checkpointCeiling, planWindows, retentionMarginMs } from '../../../../connector/sources/activity-api/windows.ts';

const hour = 3_600_000;
const day = 24 * hour;
const now = new Date('2026-11-25T10:30:45.678Z');

describe('windows planner', () => {
  it('never plans a window longer than 24 hours, and covers [since, now) without gaps in whole seconds', () => {
    const windows = planWindows({ checkpoint: undefined, since: new Date(now.getTime() - 3.5 * day), now, skewMs: 0, overlapMs: 0 });
    expect(windows).toHaveLength(4);
    for (const w of windows) {
      expect(w.end.getTime() - w.start.getTime()).toBeLessThanOrEqual(day);
      expect(w.start.getUTCMilliseconds()).toBe(0);
    }
    for (let i = 1; i < windows.length; i += 1) expect(windows[i]!.start).toEqual(windows[i - 1]!.end);
    expect(windows.at(-1)!.end).toEqual(new Date('2026-11-25T10:30:45.000Z'));
  });

  it('clamps the first window to 7 days back in server time, less a margin', () => {
    const windows = planWindows({ checkpoint: undefined, since: new Date(now.getTime() - 30 * day), now, skewMs: 0, overlapMs: 0 });
    expect(windows[0]!.start.getTime()).toBeGreaterThanOrEqual(now.getTime() - 7 * day + retentionMarginMs);
    expect(windows[0]!.start.getTime()).toBeLessThan(now.getTime() - 7 * day + retentionMarginMs + 1000);
  });

  it('plans in server time when the local clock is skewed', () => {
    const skewMs = -2 * hour; // the local clock runs two hours ahead of the service
    const windows = planWindows({ checkpoint: undefined, since: new Date(now.getTime() - 8 * day), now, skewMs, overlapMs: 0 });
    expect(windows.at(-1)!.end.getTime()).toBeLessThanOrEqual(now.getTime() + skewMs);
    expect(windows[0]!.start.getTime()).toBeGreaterThanOrEqual(now.getTime() + skewMs - 7 * day + retentionMarginMs);
  });

  it('re-lists the overlap behind the checkpoint, so late-listed blobs are seen', () => {
    const checkpoint = new Date(now.getTime() - hour);
    const windows = planWindows({ checkpoint, since: new Date(0), now, skewMs: 0, overlapMs: 4 * hour });
    expect(windows).toEqual([{ start: new Date('2026-11-25T05:30:45.000Z'), end: new Date('2026-11-25T10:30:45.000Z') }]);
  });

  it('plans nothing when the start is not before now', () => {
    expect(planWindows({ checkpoint: new Date(now.getTime() + hour), since: new Date(0), now, skewMs: 0, overlapMs: 0 })).toEqual([]);
  });

  it('clamps an old checkpoint less the overlap to the 7-day retention instead of asking for a rejected window', () => {
    const checkpoint = new Date(now.getTime() - 7 * day + hour);
    const windows = planWindows({ checkpoint, since: new Date(0), now, skewMs: 0, overlapMs: 2 * hour });
    expect(windows[0]!.start.getTime()).toBeGreaterThanOrEqual(now.getTime() - 7 * day + retentionMarginMs);
    expect(windows).toHaveLength(7);
    for (const w of windows) expect(w.end.getTime() - w.start.getTime()).toBeLessThanOrEqual(day);
  });

  it('keeps the checkpoint ceiling a safety lag behind server time, in whole seconds', () => {
    expect(checkpointCeiling(now, 0, 15 * 60_000)).toBe(Date.parse('2026-11-25T10:15:45.000Z'));
    expect(checkpointCeiling(now, -2 * hour, 15 * 60_000)).toBe(Date.parse('2026-11-25T08:15:45.000Z'));
  });
});
