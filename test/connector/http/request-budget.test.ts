import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { MockAgent } from 'undici';
import { ActivityClient } from '../../../connector/sources/activity-api/activity-client.ts';
import { activityError } from '../../../connector/sources/activity-api/af-errors.ts';
import { RequestBudget } from '../../../connector/http/request-budget.ts';
import { defaultRetryPolicy, retry } from '../../../connector/http/retry.ts';
import { seededRandom } from '../../emulator/faults.ts';
import { defaultRunSettings } from '../../../connector/config/settings.ts';

/** The client's limits as a run configures them (the settings table's defaults). */
const clientLimits = { requestsPerMinute: defaultRunSettings.requestsPerMinute, maxInFlight: defaultRunSettings.maxInFlight, maxBlobBytes: defaultRunSettings.maxBlobBytes, requestDeadlineMs: defaultRunSettings.requestDeadlineSeconds * 1000 };

const settle = () => vi.advanceTimersByTimeAsync(0);
const throttled = { throttled: true } as const;
const accepted = { throttled: false } as const;

beforeEach(() => { vi.useFakeTimers({ now: 0, fakeNodeBuiltins: true }); });
afterEach(() => { vi.useRealTimers(); });

/** A budget on the fake clock, with the connector's default ceiling unless told otherwise. */
function budgetOf(options: { requestsPerMinute?: number; maxInFlight?: number; burst?: number } = {}) {
  return new RequestBudget({ requestsPerMinute: 2000, maxInFlight: 8, ...options, now: () => Date.now() });
}

describe('RequestBudget: adaptive rate', () => {
  it('starts just under its ceiling', () => {
    const budget = budgetOf();
    expect(budget.ceilingPerMinute).toBe(2000);
    expect(budget.requestsPerMinute).toBeCloseTo(1900);
    expect(budget.cuts).toBe(0);
    expect(budget.learnedPerMinute).toBeUndefined();
  });

  it('grants no more than its ceiling in the first minute, opening burst included, then grows to it', async () => {
    const budget = budgetOf({ maxInFlight: 64 });
    let granted = 0;
    const waiters = Array.from({ length: 5000 }, () => budget.acquire().then((release) => { granted += 1; release(); }));
    await vi.advanceTimersByTimeAsync(1);
    expect(granted).toBeGreaterThan(10); // the opening burst goes at once
    await vi.advanceTimersByTimeAsync(60_000 - 2);
    expect(granted).toBeGreaterThan(1900);
    expect(granted).toBeLessThanOrEqual(2000);
    expect(budget.requestsPerMinute).toBeCloseTo(1900);
    await vi.advanceTimersByTimeAsync(45_000);
    expect(budget.requestsPerMinute).toBeGreaterThan(1950);
    await vi.advanceTimersByTimeAsync(45_000);
    expect(budget.requestsPerMinute).toBeCloseTo(2000);
    await vi.advanceTimersByTimeAsync(60_000);
    await Promise.all(waiters);
  });

  it('cuts the rate once for the AF429 answers of requests sent before the cut, as 429 or 403 alike', async () => {
    const budget = budgetOf();
    const burst = await Promise.all(Array.from({ length: 8 }, () => budget.acquire()));
    vi.advanceTimersByTime(300);
    for (const [i, release] of burst.entries()) {
      release();
      budget.answered({ throttled: i % 2 === 0, grantedAt: release.grantedAt }); // some of the burst got through
    }
    expect(budget.cuts).toBe(1);
    expect(budget.throttled).toBe(4);
    // Without the time of sending, answers within a second of the cut are taken as the same burst.
    const plain = budgetOf();
    for (let i = 0; i < 8; i += 1) {
      plain.answered(throttled);
      vi.advanceTimersByTime(100);
    }
    expect(plain.cuts).toBe(1);
  });

  it('in a spent minute (nothing but AF429) cuts deeper, down to a probe every 10 s, and learns what got through in the minute before', async () => {
    const budget = budgetOf();
    vi.advanceTimersByTime(70_000);
    // A minute's quota of 100 went in 20 s, then the quota was spent.
    for (let i = 0; i < 100; i += 1) {
      vi.advanceTimersByTime(200);
      budget.answered(accepted);
    }
    const before = budget.requestsPerMinute;
    const rates: number[] = [];
    for (let second = 0; second < 12; second += 1) {
      budget.answered(throttled);
      rates.push(budget.requestsPerMinute);
      vi.advanceTimersByTime(1000);
    }
    for (const [i, share] of [0.8, 0.4, 0.2, 0.1, 0.05].entries()) expect(rates[i]).toBeCloseTo(before * share);
    expect(Math.min(...rates)).toBe(6); // a probe every 10 s: the end of the spent minute is noticed soon
    expect(budget.learnedPerMinute).toBeUndefined();
    budget.answered(accepted); // the next minute began
    expect(budget.learnedPerMinute).toBe(100); // what got through in the minute before the quota was last found spent
    expect(budget.requestsPerMinute).toBeCloseTo(80);
  });

  it('ends a congestion event only on an answer to a request sent after it began', async () => {
    const budget = budgetOf();
    vi.advanceTimersByTime(10_000);
    const early = await budget.acquire();
    vi.advanceTimersByTime(100);
    budget.answered(throttled); // the quota is spent
    early();
    budget.answered({ throttled: false, grantedAt: early.grantedAt }); // sent before: says nothing
    expect(budget.learnedPerMinute).toBeUndefined();
    vi.advanceTimersByTime(1000);
    const later = await budget.acquire();
    later();
    budget.answered({ throttled: false, grantedAt: later.grantedAt });
    expect(budget.learnedPerMinute).toBeDefined();
  });

  it('climbs back to the rate it learned, stays near it, then probes above it, and grows only while it holds requests back', async () => {
    const budget = budgetOf({ maxInFlight: 1_000 });
    for (let i = 0; i < 500; i += 1) {
      vi.advanceTimersByTime(120);
      budget.answered(accepted); // 500 a minute got through
    }
    // The quota spent: three refusals a second apart, nothing let through, then the next minute.
    for (let i = 0; i < 3; i += 1) {
      budget.answered(throttled);
      vi.advanceTimersByTime(1000);
    }
    budget.answered(accepted);
    const learned = budget.learnedPerMinute!;
    expect(learned).toBeGreaterThan(470); // about 500, counted in whole seconds
    expect(learned).toBeLessThanOrEqual(500);
    expect(budget.requestsPerMinute).toBeCloseTo(0.8 * learned);
    // Asking less than it may: nothing to learn, no growth.
    await vi.advanceTimersByTimeAsync(120_000);
    expect(budget.requestsPerMinute).toBeCloseTo(0.8 * learned);
    // Held back (many waiting): back near 500 in 90 s, flat around it, above it only later.
    const waiting = Array.from({ length: 5000 }, () => budget.acquire().then((release) => release()));
    const rates: number[] = [];
    for (let step = 0; step < 8; step += 1) {
      await vi.advanceTimersByTimeAsync(30_000);
      rates.push(Math.round(budget.requestsPerMinute));
    }
    expect(rates[0]).toBeGreaterThan(0.9 * learned);
    expect(rates[2]).toBeGreaterThanOrEqual(Math.floor(0.99 * learned));
    expect(rates[2]).toBeLessThanOrEqual(Math.ceil(1.01 * learned));
    expect(rates[3]).toBeLessThanOrEqual(1.02 * learned);
    expect(rates[7]).toBeGreaterThan(rates[4]! + 30);
    expect(rates).toEqual([...rates].sort((x, y) => x - y));
    await vi.advanceTimersByTimeAsync(20 * 60_000);
    await Promise.all(waiting);
  });

  it('grants nothing new before a Retry-After has passed, and caps a wild one', async () => {
    const budget = budgetOf({ maxInFlight: 64 });
    budget.answered({ throttled: true, retryAfterMs: 5_000 });
    let granted = false;
    const waiting = budget.acquire().then((release) => { granted = true; return release; });
    await vi.advanceTimersByTimeAsync(4_999);
    expect(granted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    (await waiting)();
    expect(granted).toBe(true);

    budget.answered({ throttled: true, retryAfterMs: 86_400_000 });
    let done = false;
    const later = budget.acquire().then((release) => { done = true; release(); });
    await vi.advanceTimersByTimeAsync(5 * 60_000 - 1);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await later;
    expect(done).toBe(true);
  });

  it('keeps no timer once the last waiter of a pause is aborted', async () => {
    const budget = budgetOf();
    budget.answered({ throttled: true, retryAfterMs: 60_000 });
    const controller = new AbortController();
    const waiting = budget.acquire(controller.signal);
    await settle();
    expect(vi.getTimerCount()).toBe(1);
    controller.abort(new Error('stop'));
    await expect(waiting).rejects.toThrow('stop');
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('RequestBudget: order, bounds and abort', () => {
  it('holds a request beyond the bucket until the clock refills it', async () => {
    const budget = budgetOf({ requestsPerMinute: 120, maxInFlight: 10, burst: 1 });
    (await budget.acquire())();
    let granted = false;
    const waiting = budget.acquire().then((release) => { granted = true; return release; });
    await settle();
    expect(granted).toBe(false);
    // 95 % of 120 a minute: one token every 526 ms.
    await vi.advanceTimersByTimeAsync(520);
    expect(granted).toBe(false);
    await vi.advanceTimersByTimeAsync(10);
    (await waiting)();
    expect(granted).toBe(true);
  });

  it('grants in arrival order, one per released slot', async () => {
    const budget = budgetOf({ requestsPerMinute: 1_000_000, maxInFlight: 2 });
    const first = await budget.acquire();
    const second = await budget.acquire();
    const order: number[] = [];
    const later = [3, 4, 5].map((n) => budget.acquire().then((release) => { order.push(n); return release; }));
    await settle();
    expect(order).toEqual([]);
    expect(budget.inFlight).toBe(2);
    first();
    first(); // releasing twice frees one slot only
    await settle();
    expect(order).toEqual([3]);
    second();
    await settle();
    expect(order).toEqual([3, 4]);
    for (const release of await Promise.all(later.slice(0, 2))) release();
    await later[2];
    expect(order).toEqual([3, 4, 5]);
  });

  it('wakes waiters one at a time as the bucket refills, in arrival order', async () => {
    const budget = budgetOf({ requestsPerMinute: 600, maxInFlight: 10, burst: 1 });
    (await budget.acquire())();
    const order: number[] = [];
    const later = [1, 2, 3].map((n) => budget.acquire().then((release) => { order.push(n); release(); }));
    await vi.advanceTimersByTimeAsync(106); // 570 a minute: a token every 105.3 ms
    expect(order).toEqual([1]);
    await vi.advanceTimersByTimeAsync(106);
    expect(order).toEqual([1, 2]);
    await vi.advanceTimersByTimeAsync(106);
    await Promise.all(later);
    expect(order).toEqual([1, 2, 3]);
  });

  it('drops an aborted waiter from the queue', async () => {
    const budget = budgetOf({ requestsPerMinute: 1_000_000, maxInFlight: 1 });
    const held = await budget.acquire();
    const controller = new AbortController();
    const aborted = budget.acquire(controller.signal);
    const next = budget.acquire();
    controller.abort(new Error('stop'));
    await expect(aborted).rejects.toThrow('stop');
    expect(budget.waiting).toBe(1);
    held();
    (await next)();
    expect(budget.inFlight).toBe(0);
  });
});

interface Simulation {
  readonly calls: number;
  readonly quotaPerMinute: number;
  /** The budget's ceiling (default: the quota). */
  readonly ceiling?: number;
  /** 'window': counted per calendar minute, throttled requests included, as the stand-in does; 'bucket': refilled continuously. */
  readonly server?: 'window' | 'bucket';
  /** Where the server's minutes start relative to the client's start. */
  readonly windowPhaseMs?: number;
  /** Share of requests refused AF429 at random, whatever the rate (a service under load), before the quota counts them. */
  readonly noise?: number;
  readonly seed: number;
}

/**
 * Callers (more than the budget lets in flight) each take a slot per attempt, report the answer to the budget and
 * retry AF429 through the retry policy, against a server model with a fixed quota. All on the fake clock.
 */
async function simulate(options: Simulation) {
  const random = seededRandom(options.seed);
  let learnedAt: number | undefined;
  let throttledBeforeLearning = 0;
  const budget = new RequestBudget({
    requestsPerMinute: options.ceiling ?? options.quotaPerMinute, maxInFlight: 16, now: () => Date.now(),
    onCongestion: () => { if (learnedAt === undefined) { learnedAt = Date.now(); throttledBeforeLearning = rejected; } },
  });
  const quota = options.quotaPerMinute;
  const window = { minute: Number.NaN, used: 0 };
  const bucket = { tokens: quota / 60, at: 0 };
  let peakWindow = 0;
  const admit = (): boolean => {
    const now = Date.now();
    if (options.noise !== undefined && random() < options.noise) return false;
    if (options.server === 'bucket') {
      bucket.tokens = Math.min(quota / 60, bucket.tokens + ((now - bucket.at) * quota) / 60_000);
      bucket.at = now;
      if (bucket.tokens < 1) return false;
      bucket.tokens -= 1;
      return true;
    }
    const minute = Math.floor((now + (options.windowPhaseMs ?? 0)) / 60_000);
    if (minute !== window.minute) { window.minute = minute; window.used = 0; }
    window.used += 1;
    peakWindow = Math.max(peakWindow, window.used);
    return window.used <= quota;
  };
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  const af429 = JSON.stringify({ error: { code: 'AF429', message: 'Too many requests.' } });
  let rejected = 0;
  let failed = 0;
  let remaining = options.calls;
  const attempt = async () => {
    const release = await budget.acquire();
    let ok: boolean;
    try {
      await sleep(20 + random() * 40); // on the way
      ok = admit();
      await sleep(ok ? 100 + random() * 200 : 20); // a blob's answer, or a quick AF429
    } finally {
      release();
    }
    budget.answered({ throttled: !ok, grantedAt: release.grantedAt });
    if (!ok) {
      rejected += 1;
      throw activityError(429, af429);
    }
  };
  const caller = async () => {
    while (remaining > 0) {
      remaining -= 1;
      await retry(attempt, { policy: { ...defaultRetryPolicy, random } }).catch(() => { failed += 1; });
    }
  };
  let finishedAt: number | undefined;
  const all = Promise.all(Array.from({ length: 32 }, caller)).then(() => { finishedAt = Date.now(); });
  while (finishedAt === undefined) await vi.advanceTimersByTimeAsync(1000);
  await all;
  const quotaBoundMs = (options.calls / quota) * 60_000;
  // After the first congestion event the quota is known: what is throttled from then on is the steady state's price.
  const steadyThrottled = rejected - throttledBeforeLearning;
  return { ratio: finishedAt / quotaBoundMs, throttled: rejected, steadyShare: steadyThrottled / options.calls, failed, cuts: budget.cuts, peakWindow, learned: budget.learnedPerMinute, rateAtEnd: budget.requestsPerMinute };
}

describe('RequestBudget against a server with a fixed quota', () => {
  it.each([0, 17_000, 45_000])('finishes 2,100 calls against a 2,000/min quota within 1.1x of the quota-bound time, without AF429 (minute phase %i ms)', async (windowPhaseMs) => {
    const result = await simulate({ calls: 2100, quotaPerMinute: 2000, windowPhaseMs, seed: 7 });
    expect(result).toMatchObject({ failed: 0, throttled: 0 });
    expect(result.peakWindow).toBeLessThanOrEqual(2000);
    expect(result.ratio).toBeLessThanOrEqual(1.1);
  });

  it('keeps a ten-minute backfill within 1.06x of the quota-bound time with a handful of AF429', async () => {
    const result = await simulate({ calls: 20_000, quotaPerMinute: 2000, windowPhaseMs: 17_000, seed: 11 });
    expect(result.failed).toBe(0);
    expect(result.throttled).toBeLessThanOrEqual(10);
    expect(result.ratio).toBeLessThanOrEqual(1.06);
  });

  it.each([1500, 500, 100, 20, 5])('finds a per-minute quota of %i/min under a 2,000/min ceiling: no call fails, the rate stays just under it', async (quotaPerMinute) => {
    const calls = quotaPerMinute * 10;
    const result = await simulate({ calls, quotaPerMinute, ceiling: 2000, server: 'window', windowPhaseMs: 17_000, seed: 11 });
    expect(result.failed).toBe(0);
    expect(result.ratio).toBeLessThanOrEqual(1.1);
    expect(result.learned).toBeGreaterThan(quotaPerMinute * 0.9);
    expect(result.learned).toBeLessThan(quotaPerMinute * 1.25);
    // Once the quota is known, a few requests in a hundred at most are answered AF429.
    expect(result.steadyShare).toBeLessThanOrEqual(0.05);
  });

  it.each([1500, 500, 100])('keeps near a continuously refilled quota of %i/min: no call fails, and the refusals stay few', async (quotaPerMinute) => {
    const calls = quotaPerMinute * 10;
    const result = await simulate({ calls, quotaPerMinute, ceiling: 2000, server: 'bucket', windowPhaseMs: 17_000, seed: 11 });
    expect(result.failed).toBe(0);
    expect(result.ratio).toBeLessThanOrEqual(1.1);
    // Such a quota refuses only the excess, and a refusal here and there is taken for noise until most are refused:
    // the rate can settle a little above the quota (README: Throttling).
    expect(result.throttled / calls).toBeLessThanOrEqual(0.2);
  });

  it('is not talked down by refusals that come whatever the rate (15 % at random, no quota in reach): no call fails', async () => {
    const result = await simulate({ calls: 20_000, quotaPerMinute: 1_000_000, ceiling: 60_000, noise: 0.15, seed: 3 });
    expect(result.failed).toBe(0);
    expect(result.throttled).toBeGreaterThan(2000);
    expect(result.rateAtEnd).toBeGreaterThan(0.75 * 60_000);
  });

  it('lets no call fail against a quota of 3 a minute, however many AF429 it takes', async () => {
    const result = await simulate({ calls: 30, quotaPerMinute: 3, ceiling: 2000, windowPhaseMs: 5_000, seed: 5 });
    expect(result.failed).toBe(0);
    expect(result.ratio).toBeLessThanOrEqual(1.2);
  });
});

describe('ActivityClient reports AF429 to its budget', () => {
  it('pauses every new request for a Retry-After given with AF429 as HTTP 403, not only the retried one', async () => {
    vi.useFakeTimers({ now: 0, fakeNodeBuiltins: true, toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] });
    const mock = new MockAgent();
    mock.disableNetConnect();
    const pool = mock.get('https://manage.example');
    const arrivals: Array<{ path: string; at: number }> = [];
    let first = true;
    pool.intercept({ path: () => true, method: 'GET' }).reply((request) => {
      arrivals.push({ path: request.path.split('?')[0]!, at: Date.now() });
      if (first) {
        first = false;
        return { statusCode: 403, data: JSON.stringify({ error: { code: 'AF429', message: 'Too many requests.' } }), responseOptions: { headers: { 'retry-after': '2' } } };
      }
      return { statusCode: 200, data: '[]' };
    }).persist();
    const api = new ActivityClient({ ...clientLimits,
      apiRoot: 'https://manage.example', tenantId: 't', publisherId: 'p', dispatcher: mock,
      tokens: { getToken: async () => 'token', invalidate: () => {} },
    });
    const retried = api.listSubscriptions();
    await vi.advanceTimersByTimeAsync(10);
    const other = api.fetchContent({ contentType: 'Audit.General', contentId: 'b', contentUri: 'https://manage.example/api/v1.0/t/activity/feed/audit/b', contentCreated: '', contentExpiration: '' });
    await vi.advanceTimersByTimeAsync(1_900);
    expect(arrivals.map((a) => a.path)).toEqual(['/api/v1.0/t/activity/feed/subscriptions/list']);
    await vi.advanceTimersByTimeAsync(200);
    await Promise.all([retried, other]);
    expect(arrivals.slice(1).every((a) => a.at >= 2000)).toBe(true);
    expect(arrivals).toHaveLength(3);
    await mock.close();
  });
});

describe('RequestBudget: background requests (sweeps) give way to live ones', () => {
  it('grants a waiting live request before any waiting background one, and lets background hold at most half the slots', async () => {
    const budget = budgetOf({ requestsPerMinute: 1_000_000, maxInFlight: 4 });
    const order: string[] = [];
    const releases: Array<() => void> = [];
    const take = (name: string, priority: 'live' | 'background') => budget.acquire(undefined, priority).then((release) => { order.push(name); releases.push(release); });
    for (let i = 0; i < 4; i += 1) void take(`b${i}`, 'background');
    await settle();
    expect(order).toEqual(['b0', 'b1']); // half the slots: two are left for live requests
    void take('l0', 'live');
    void take('l1', 'live');
    await settle();
    expect(order).toEqual(['b0', 'b1', 'l0', 'l1']);
    void take('l2', 'live');
    releases[0]!(); // a background request ends: the waiting live one goes first
    await settle();
    expect(order).toEqual(['b0', 'b1', 'l0', 'l1', 'l2']);
    for (const release of releases.slice(1)) release();
    await settle();
    expect(order.slice(5).sort()).toEqual(['b2', 'b3']);
    expect(budget.waiting).toBe(0);
  });
});
