import { describe, expect, it } from 'vitest';
import { StallWatch, throttledNow } from '../../../connector/report/stall-watch.ts';

const rate = (throttledNowFlag: boolean) => ({ perMinute: 80, ceilingPerMinute: 2000, learnedPerMinute: 100, throttled: 5, throttledNow: throttledNowFlag });

describe('StallWatch', () => {
  it('says a run that holds units but commits nothing is stalled, and that its requests wait for a spent quota when they do', () => {
    let now = 0;
    let throttled: string | undefined;
    const watch = new StallWatch({ stalledAfterMs: 120_000, now: () => now, throttled: () => throttled });
    watch.databaseBack();
    watch.unitsHeld(5);
    now = 119_000;
    expect(watch.reasons()).toEqual([]);
    now = 130_000;
    expect(watch.reasons()).toEqual(['no commit for 130 s while holding 5 unit(s)']);
    throttled = throttledNow([rate(true)]);
    expect(watch.reasons()).toEqual(['no commit for 130 s while holding 5 unit(s); the tenant is throttled (AF429): requests wait for the quota, see status\'s request rate']);
    watch.committed();
    expect(watch.reasons()).toEqual([]);
  });

  it('counts the throttled tenants of a fleet, and says nothing when none is throttled now', () => {
    expect(throttledNow([rate(false), undefined])).toBeUndefined();
    expect(throttledNow([rate(true), rate(false), rate(true)])).toBe('2 tenant(s) are throttled (AF429): requests wait for the quota, see status\'s request rate');
  });
});
