/**
 * Bounds what the connector asks of the tenant's quota: a token bucket of requests per minute and a cap on
 * requests in flight. Every API call takes a slot first, so bursts from concurrent fetchers queue here (first
 * come, first served) instead of turning into AF429 answers. Waiters are woken one at a time, never all at once.
 *
 * The rate adapts (AIMD, as TCP's congestion window): `requestsPerMinute` is the ceiling; the bucket starts just
 * under it, is cut multiplicatively when the service answers AF429 (the client reports every answer through
 * `answered`), and climbs back additively after each quiet spell without one. The quota is not documented
 * precisely (about 2,000 a minute per publisher identifier, more for large tenants), so the budget finds it
 * instead of guessing it low.
 */
export interface RateTuning {
  /** The rate at start, as a share of the ceiling: close to it, with room for the opening burst. */
  readonly startShare: number;
  /**
   * The starting rate is held this long before it may grow: a quota counted per minute then sees at most the
   * opening burst plus a minute at the starting rate, under the ceiling.
   */
  readonly startHoldMs: number;
  /** The rate is multiplied by this on a congestion event ... */
  readonly cutFactor: number;
  /** ... and by this on each further cut while nothing but AF429 comes back (undone by the first other answer). */
  readonly wallCutFactor: number;
  /** AF429s closer together than this are one congestion event (the answers of one burst of concurrent requests). */
  readonly cutSpacingMs: number;
  /** The rate never goes below this share of the ceiling ... */
  readonly floorShare: number;
  /** ... nor below this many requests a minute (unless the ceiling itself is lower). */
  readonly floorPerMinute: number;
  /** After each `recoveryPeriodMs` without an AF429, the rate grows by this share of the ceiling. */
  readonly recoveryShare: number;
  readonly recoveryPeriodMs: number;
  /** Upper bound of a Retry-After pause (a wild value must not stall the connector for hours). */
  readonly maxPauseMs: number;
}

export const defaultRateTuning: RateTuning = {
  startShare: 0.95,
  startHoldMs: 60_000,
  cutFactor: 0.7,
  wallCutFactor: 0.5,
  cutSpacingMs: 1000,
  floorShare: 0.1,
  floorPerMinute: 60,
  recoveryShare: 0.05,
  recoveryPeriodMs: 10_000,
  maxPauseMs: 5 * 60_000,
};

export interface RequestBudgetOptions {
  /** The ceiling of the rate: the budget never grants faster than this. */
  readonly requestsPerMinute: number;
  readonly maxInFlight: number;
  /** Requests that may start back to back after an idle spell (default: a second's worth of the current rate, at least 1). */
  readonly burst?: number;
  /** Milliseconds on a monotonic clock (default performance.now). */
  readonly now?: () => number;
  readonly tuning?: Partial<RateTuning>;
}

/** Live collection, or work that may wait for it (a sweep over the retention): see `acquire`. */
export type RequestPriority = 'live' | 'background';

/** First come, first served, without shifting the array on every grant. */
class WaiterQueue {
  readonly #items: Waiter[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(waiter: Waiter): void {
    this.#items.push(waiter);
  }

  peek(): Waiter | undefined {
    return this.#items[this.#head];
  }

  shift(): Waiter {
    const waiter = this.#items[this.#head]!;
    this.#head += 1;
    // Compact now and then instead of shifting on every grant.
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items.splice(0, this.#head);
      this.#head = 0;
    }
    return waiter;
  }

  remove(waiter: Waiter): void {
    const index = this.#items.indexOf(waiter, this.#head);
    if (index >= 0) this.#items.splice(index, 1);
  }
}

interface Waiter {
  readonly priority: RequestPriority;
  readonly grant: (release: () => void) => void;
  readonly reject: (reason: unknown) => void;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
}

const minute = 60_000;

export class RequestBudget {
  readonly #tuning: RateTuning;
  readonly #ceiling: number;
  readonly #floor: number;
  readonly #fixedBurst: number | undefined;
  readonly #maxInFlight: number;
  readonly #now: () => number;
  readonly #live = new WaiterQueue();
  readonly #background = new WaiterQueue();
  #backgroundInFlight = 0;
  /** Requests per millisecond granted now. */
  #rate: number;
  #tokens: number;
  #updated: number;
  /** Start of the current spell without AF429 (moved forward by each recovery step it pays for). */
  #quietSince: number;
  #lastCutAt = Number.NEGATIVE_INFINITY;
  /** The rate before the first cut of the congestion event under way (AF429 answers and nothing else since). */
  #congestedFrom: number | undefined;
  #pausedUntil = Number.NEGATIVE_INFINITY;
  #cuts = 0;
  #inFlight = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: RequestBudgetOptions) {
    if (!(options.requestsPerMinute > 0) || !(options.maxInFlight >= 1)) throw new RangeError('requestsPerMinute and maxInFlight must be positive');
    this.#tuning = { ...defaultRateTuning, ...options.tuning };
    const ceiling = options.requestsPerMinute;
    this.#ceiling = ceiling / minute;
    this.#floor = Math.min(ceiling, Math.max(this.#tuning.floorPerMinute, ceiling * this.#tuning.floorShare)) / minute;
    this.#rate = Math.max(this.#floor, this.#ceiling * this.#tuning.startShare);
    this.#fixedBurst = options.burst === undefined ? undefined : Math.max(1, options.burst);
    this.#maxInFlight = Math.floor(options.maxInFlight);
    this.#now = options.now ?? (() => performance.now());
    // The first minute grants at most the initial tokens plus a minute at the start rate: keep that within the
    // ceiling, so a quota counted per minute (as the stand-in does) is not blown by the opening burst.
    this.#tokens = Math.max(1, Math.min(this.#burst(), ceiling - this.#rate * minute));
    this.#updated = this.#now();
    this.#quietSince = this.#updated + this.#tuning.startHoldMs - this.#tuning.recoveryPeriodMs;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get waiting(): number {
    return this.#live.length + this.#background.length;
  }

  /** The rate granted now, in requests a minute (between the floor and the ceiling). */
  get requestsPerMinute(): number {
    this.#advance(this.#now());
    return this.#rate * minute;
  }

  get ceilingPerMinute(): number {
    return this.#ceiling * minute;
  }

  /** Times the rate was cut so far (once per congestion event, and again for each second of a wall of AF429). */
  get cuts(): number {
    return this.#cuts;
  }

  /**
   * Resolves with a release function once a request may start; rejects with the signal's reason on abort.
   * Background requests start only when no live request waits, and hold at most half the in-flight slots, so that
   * they never delay live collection by more than the requests already under way.
   */
  acquire(signal?: AbortSignal, priority: RequestPriority = 'live'): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const queue = priority === 'live' ? this.#live : this.#background;
      const waiter: Waiter = {
        priority,
        grant: resolve,
        reject,
        signal,
        onAbort: () => {
          queue.remove(waiter);
          reject(signal!.reason);
          this.#pump();
        },
      };
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
      queue.push(waiter);
      this.#pump();
    });
  }

  /**
   * How the service answered a request that held a slot: AF429 (as 429 or 403) or anything else. AF429 cuts the
   * rate, at most once per `cutSpacingMs` (the answers to one burst of concurrent requests are one event), and a
   * Retry-After stops new grants until it has passed.
   *
   * While nothing but AF429 comes back, the cuts go on, down to the floor: the quota is spent, and there is no
   * point in asking fast. The first other answer ends the event and brings the rate back to one cut below where
   * the event began: a quota counted per minute answers everything AF429 until its minute ends, whatever the
   * rate, so the cuts made during that wall say nothing about the rate the next minute can take.
   */
  answered(answer: { readonly throttled: boolean; readonly retryAfterMs?: number | undefined }): void {
    const now = this.#now();
    this.#advance(now);
    if (!answer.throttled) {
      if (this.#congestedFrom !== undefined) {
        this.#rate = Math.max(this.#rate, this.#congestedFrom * this.#tuning.cutFactor);
        this.#congestedFrom = undefined;
        // A refill timer set at the slower rate would wake the next waiter late.
        if (this.#timer && now >= this.#pausedUntil) {
          clearTimeout(this.#timer);
          this.#timer = undefined;
        }
        this.#pump();
      }
      return;
    }
    this.#quietSince = now;
    const factor = this.#congestedFrom === undefined ? this.#tuning.cutFactor : this.#tuning.wallCutFactor;
    this.#congestedFrom ??= this.#rate;
    if (answer.retryAfterMs !== undefined && answer.retryAfterMs > 0) {
      this.#pausedUntil = Math.max(this.#pausedUntil, now + Math.min(answer.retryAfterMs, this.#tuning.maxPauseMs));
    }
    if (now - this.#lastCutAt >= this.#tuning.cutSpacingMs) {
      this.#lastCutAt = now;
      this.#cuts += 1;
      this.#rate = Math.max(this.#floor, this.#rate * factor);
      this.#tokens = Math.min(this.#tokens, this.#burst());
    }
    this.#pump();
  }

  #burst(): number {
    return this.#fixedBurst ?? Math.max(1, Math.ceil((this.#rate * minute) / 60));
  }

  #refill(at: number): void {
    if (at <= this.#updated) return;
    this.#tokens = Math.min(this.#burst(), this.#tokens + (at - this.#updated) * this.#rate);
    this.#updated = at;
  }

  /** Brings the bucket to `now`: the recovery steps earned since the last AF429, each at its own time, then the refill. */
  #advance(now: number): void {
    const { recoveryPeriodMs, recoveryShare } = this.#tuning;
    while (this.#rate < this.#ceiling && now - this.#quietSince >= recoveryPeriodMs) {
      this.#quietSince += recoveryPeriodMs;
      this.#refill(this.#quietSince);
      this.#rate = Math.min(this.#ceiling, this.#rate + this.#ceiling * recoveryShare);
    }
    this.#refill(now);
  }

  #release(priority: RequestPriority): void {
    this.#inFlight -= 1;
    if (priority === 'background') this.#backgroundInFlight -= 1;
    this.#pump();
  }

  /** The next waiter allowed to start now: live first; background only with no live one waiting and a slot to spare. */
  #next(): WaiterQueue | undefined {
    if (this.#live.length > 0) return this.#live;
    if (this.#background.length > 0 && this.#backgroundInFlight < Math.max(1, Math.floor(this.#maxInFlight / 2))) return this.#background;
    return undefined;
  }

  #pump(): void {
    for (let queue = this.#next(); queue !== undefined && this.#inFlight < this.#maxInFlight; queue = this.#next()) {
      const now = this.#now();
      this.#advance(now);
      if (now < this.#pausedUntil) {
        this.#wakeIn(this.#pausedUntil - now);
        break;
      }
      if (this.#tokens < 1) {
        this.#wakeIn((1 - this.#tokens) / this.#rate);
        break;
      }
      this.#tokens -= 1;
      this.#inFlight += 1;
      const waiter = queue.shift();
      if (waiter.priority === 'background') this.#backgroundInFlight += 1;
      waiter.signal?.removeEventListener('abort', waiter.onAbort);
      let released = false;
      waiter.grant(() => {
        if (released) return;
        released = true;
        this.#release(waiter.priority);
      });
    }
    // Nobody left to wake: do not keep the process alive for a refill or a pause.
    if (this.waiting === 0 && this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  /** One timer at most, and only while someone waits (a timer set earlier than needed just pumps and sets another). */
  #wakeIn(ms: number): void {
    if (this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#pump();
    }, Math.max(1, Math.ceil(ms)));
  }
}
