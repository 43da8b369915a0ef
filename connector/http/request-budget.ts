/**
 * Bounds what the connector asks of the tenant's quota: a token bucket of requests per minute and a cap on
 * requests in flight. Every API call takes a slot first, so bursts from concurrent fetchers queue here (first
 * come, first served) instead of turning into AF429 answers. Waiters are woken one at a time, never all at once.
 *
 * The rate finds the quota the service enforces, whatever it is, and stays just under it. The quota is not
 * documented precisely (about 2,000 a minute per publisher identifier, more for large tenants, far less when
 * others share the bucket), so `requestsPerMinute` is only a ceiling: the bucket starts just under it, and each
 * congestion event (AF429, as 429 or 403; the client reports every answer through `answered`) teaches it the rate
 * the service took. As TCP CUBIC does with its congestion window, the budget remembers that rate, drops below it,
 * climbs back quickly at first and slowly near it, stays there a while, and only then probes above it: against a
 * fixed quota a few requests in a hundred are answered AF429, against a quota that grew the rate finds it again.
 *
 * Not every AF429 is a spent quota: a service under load refuses now and then whatever the rate. An event is read by
 * how the requests sent during it were answered (see `#endWall`): mostly refused is a spent quota, and what got
 * through in the minute before is the quota itself (a quota counted per minute answers AF429 to everything until its
 * minute ends, however fast the budget had been asking); a refusal here and there below the rate learned is noise.
 */
import { WaitingLine } from './slots.ts';

/** How the rate finds the quota and follows it. */
const tuning = {
  /** The rate at start, as a share of the ceiling: close to it, with room for the opening burst. */
  startShare: 0.95,
  /**
   * The starting rate is held this long before it may grow: a quota counted per minute then sees at most the
   * opening burst plus a minute at the starting rate, under the ceiling.
   */
  startHoldMs: 60_000,
  /** After congestion the rate drops to this share of the rate the service took (CUBIC's beta) ... */
  cutFactor: 0.8,
  /** ... and is back at that rate after this long asking at full speed (CUBIC's K), then probes above it, slowly at first; ... */
  regainMs: 90_000,
  /** ... or after this many requests at that rate when that takes longer: a tiny quota is probed as seldom, per request, as a large one. */
  regainRequests: 40,
  /** While nothing but AF429 comes back, the rate is cut by this each `cutSpacingMs` ... */
  wallCutFactor: 0.5,
  /** ... but still asks at least once in this many ms, so that the end of a spent minute is noticed soon. */
  wallProbeMs: 10_000,
  /** AF429s closer together than this are one congestion event (the answers of one burst of concurrent requests). */
  cutSpacingMs: 1000,
  /** A congestion event lasts at least this long: long enough to tell a spent quota from a refusal here and there. */
  eventMs: 1000,
  /** The rate never goes below this many requests a minute (unless the ceiling itself is lower). */
  floorPerMinute: 1,
  /** Upper bound of a Retry-After pause (a wild value must not stall the connector for hours). */
  maxPauseMs: 5 * 60_000,
} as const;

/** What the budget learned from one congestion event, when it ended (the first answer after it that was not AF429). */
export interface CongestionEvent {
  /** The rate the service took, in requests a minute. */
  readonly learnedPerMinute: number;
  /** The rate the budget asks at now, just under it. */
  readonly ratePerMinute: number;
  /** AF429 answers of the event. */
  readonly throttled: number;
}

export interface RequestBudgetOptions {
  /** The ceiling of the rate: the budget never grants faster than this. */
  readonly requestsPerMinute: number;
  readonly maxInFlight: number;
  /** Requests that may start back to back after an idle spell (default: a second's worth of the current rate, at least 1). */
  readonly burst?: number;
  /** Milliseconds on a monotonic clock (default performance.now). */
  readonly now?: () => number;
  /** Told at the end of each congestion event what the budget learned (for the log and the progress line). */
  readonly onCongestion?: (event: CongestionEvent) => void;
}

/** Gives a slot back; `grantedAt` tells `answered` whether its answer can end a congestion event that began later. */
export type Release = (() => void) & { readonly grantedAt: number };

/** Live collection, or work that may wait for it (a sweep over the retention): see `acquire`. */
export type RequestPriority = 'live' | 'background';

const minute = 60_000;
/** The rate grows only while the budget holds requests back (it was the limit less than this long ago). */
const limitedGraceMs = 2000;

/**
 * What the service took, per second over the last two minutes: the answers that were not AF429, and the AF429s that
 * were noise (a refusal here and there, not a spent quota), which a quota counting every request counted too.
 */
class TakenWindow {
  // Two minutes of seconds: the minute before an instant up to a minute ago can still be read.
  readonly #seconds = new Float64Array(128).fill(Number.NaN);
  readonly #counts = new Uint32Array(128);

  add(now: number, count = 1): void {
    const second = Math.floor(now / 1000);
    const slot = second & 127;
    if (this.#seconds[slot] !== second) { this.#seconds[slot] = second; this.#counts[slot] = 0; }
    this.#counts[slot] = this.#counts[slot]! + count;
  }

  /** Requests taken in the 60 s before `at` (at most a minute ago). */
  minuteBefore(at: number): number {
    const second = Math.floor(at / 1000);
    let total = 0;
    for (let slot = 0; slot < 128; slot += 1) {
      const at = this.#seconds[slot]!;
      if (at > second - 60 && at <= second) total += this.#counts[slot]!;
    }
    return total;
  }
}

/**
 * The rate over time since the last congestion event, as CUBIC's window: from `from` back up to `target` (the rate
 * the service took) in `regainMs`, flat near it, then above it, faster the longer nothing is throttled.
 */
interface Epoch {
  readonly from: number;
  readonly target: number;
  /** The cube's steepness: (1 - from / target) / regain³, so that `regain` after the cut the rate is back at the target. */
  readonly steepness: number;
  /** How long the climb back to the target takes. */
  readonly regainMs: number;
  /** Time spent holding requests back since the epoch began (negative: a hold before growth starts). */
  grownMs: number;
}

export class RequestBudget {
  readonly #ceiling: number;
  readonly #floor: number;
  readonly #fixedBurst: number | undefined;
  readonly #maxInFlight: number;
  readonly #now: () => number;
  readonly #onCongestion: ((event: CongestionEvent) => void) | undefined;
  readonly #live = new WaitingLine<Release>(() => this.#pump());
  readonly #background = new WaitingLine<Release>(() => this.#pump());
  readonly #taken = new TakenWindow();
  readonly #startedAt: number;
  #backgroundInFlight = 0;
  /** Requests per millisecond granted now. */
  #rate: number;
  #epoch: Epoch;
  /** The rate the service took at the last congestion event (per ms). */
  #learned: number | undefined;
  #tokens: number;
  #updated: number;
  /** Up to when the epoch's growth was accounted. */
  #grownUntil: number;
  #limitedAt = Number.NEGATIVE_INFINITY;
  #lastCutAt = Number.NEGATIVE_INFINITY;
  #lastThrottledAt = Number.NEGATIVE_INFINITY;
  /**
   * The congestion event under way: the rate and epoch it began at, when it last cut, and how the requests sent since
   * it began were answered (refused, passed); `throttled` counts every AF429 of the event.
   */
  #wall: { readonly from: number; readonly began: number; readonly epoch: Epoch; lastCut: number; refused: number; passed: number; throttled: number } | undefined;
  #pausedUntil = Number.NEGATIVE_INFINITY;
  #cuts = 0;
  #throttled = 0;
  #inFlight = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: RequestBudgetOptions) {
    if (!(options.requestsPerMinute > 0) || !(options.maxInFlight >= 1)) throw new RangeError('requestsPerMinute and maxInFlight must be positive');
    const ceiling = options.requestsPerMinute;
    this.#ceiling = ceiling / minute;
    this.#floor = Math.min(ceiling, tuning.floorPerMinute) / minute;
    this.#rate = Math.max(this.#floor, this.#ceiling * tuning.startShare);
    this.#epoch = this.#epochFrom(this.#rate, this.#ceiling, -tuning.startHoldMs);
    this.#fixedBurst = options.burst === undefined ? undefined : Math.max(1, options.burst);
    this.#maxInFlight = Math.floor(options.maxInFlight);
    this.#now = options.now ?? (() => performance.now());
    this.#onCongestion = options.onCongestion;
    // The first minute grants at most the initial tokens plus a minute at the start rate: keep that within the
    // ceiling, so a quota counted per minute (as the stand-in does) is not blown by the opening burst.
    this.#tokens = Math.max(1, Math.min(this.#burst(), ceiling - this.#rate * minute));
    this.#updated = this.#now();
    this.#startedAt = this.#updated;
    this.#grownUntil = this.#updated;
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

  /** The rate the service took when it last throttled, in requests a minute; undefined while it never has. */
  get learnedPerMinute(): number | undefined {
    return this.#learned === undefined ? undefined : this.#learned * minute;
  }

  /** Times the rate was cut so far (once per congestion event, and again for each second of a wall of AF429). */
  get cuts(): number {
    return this.#cuts;
  }

  /** AF429 answers so far. */
  get throttled(): number {
    return this.#throttled;
  }

  /** Whether an AF429 came back within the last `withinMs`. */
  throttledWithin(withinMs: number): boolean {
    return this.#now() - this.#lastThrottledAt <= withinMs;
  }

  /**
   * Resolves with a release function once a request may start; rejects with the signal's reason on abort.
   * Background requests start only when no live request waits, and hold at most half the in-flight slots, so that
   * they never delay live collection by more than the requests already under way.
   */
  acquire(signal?: AbortSignal, priority: RequestPriority = 'live'): Promise<Release> {
    const granted = (priority === 'live' ? this.#live : this.#background).wait(signal);
    this.#pump();
    return granted;
  }

  /**
   * How the service answered a request that held a slot: AF429 (as 429 or 403) or anything else. The first AF429
   * of a congestion event cuts the rate at once; while nothing but AF429 comes back (a spent per-minute quota
   * answers everything AF429 until its minute ends) the rate is cut again each `cutSpacingMs`, down to a probe
   * every `wallProbeMs`, and a Retry-After stops new grants until it has passed. The first other answer ends the
   * event: the rate the service took is learned, and a new epoch climbs back to it from `cutFactor` below.
   */
  answered(answer: { readonly throttled: boolean; readonly retryAfterMs?: number | undefined; readonly grantedAt?: number | undefined }): void {
    const now = this.#now();
    this.#advance(now);
    const event = this.#wall;
    // A request sent before the event began says nothing of how the service answers now.
    const sentDuring = event !== undefined && !(answer.grantedAt !== undefined && answer.grantedAt < event.began);
    if (!answer.throttled) {
      this.#taken.add(now);
      if (event !== undefined && sentDuring) {
        event.passed += 1;
        if (now - event.began >= tuning.eventMs) this.#endWall(now);
      }
      return;
    }
    this.#throttled += 1;
    this.#lastThrottledAt = now;
    if (answer.retryAfterMs !== undefined && answer.retryAfterMs > 0) {
      this.#pausedUntil = Math.max(this.#pausedUntil, now + Math.min(answer.retryAfterMs, tuning.maxPauseMs));
    }
    // An answer to a request sent before the last cut belongs to the burst that cut: it teaches nothing new.
    const fresh = answer.grantedAt !== undefined ? answer.grantedAt >= this.#lastCutAt : now - this.#lastCutAt >= tuning.cutSpacingMs;
    if (event === undefined) {
      if (fresh) {
        this.#wall = { from: this.#rate, began: now, epoch: this.#epoch, lastCut: now, refused: 1, passed: 0, throttled: 1 };
        this.#cut(now, this.#rate * tuning.cutFactor);
      }
    } else {
      event.throttled += 1;
      if (sentDuring) event.refused += 1;
      // Cut deeper only while most of what is sent is refused: the quota is spent, not a refusal here and there.
      if (fresh && event.refused >= event.passed) {
        event.lastCut = now;
        const probe = Math.min(this.#ceiling, Math.max(this.#floor, 1 / tuning.wallProbeMs));
        this.#cut(now, Math.max(Math.min(this.#rate, probe), this.#rate * tuning.wallCutFactor));
      }
    }
    this.#pump();
  }

  #cut(now: number, rate: number): void {
    this.#lastCutAt = now;
    this.#cuts += 1;
    this.#rate = Math.max(this.#floor, rate);
    // What was saved up before the quota ran out must not go out as a burst into it.
    this.#tokens = Math.min(this.#tokens, 1);
    // The epoch restarts from here, growing only once the event is over.
    this.#epoch = this.#epochFrom(this.#rate, this.#rate, Number.NEGATIVE_INFINITY);
  }

  /**
   * What the event teaches, once a request sent during it got through and it has lasted `eventMs`. When most of what
   * was sent during it was refused (at least as many refused as passed, and more than chance would refuse: three or
   * more, or for five seconds or more), the quota is spent: what got through in the minute before it was last found spent
   * is the quota (a per-minute quota lets exactly that through, its minute having begun after that instant; a
   * continuous one about that), unless the budget is younger than a few seconds, when the rate it asked at is all it
   * knows. When most got through, the refusals were few: above the rate learned before, that rate was too much; at or
   * below it, they are noise (a service under load refuses now and then whatever the rate), and the rate goes on as
   * if they had not come, so that stray refusals never ratchet the rate down.
   */
  #endWall(now: number): void {
    const wall = this.#wall!;
    this.#wall = undefined;
    // Most refused, and by more than chance at a few requests a second: several refusals, or refusals for seconds.
    const spent = wall.refused >= wall.passed && (wall.refused >= 3 || now - wall.began >= 5000);
    if (!spent) this.#taken.add(now, wall.refused);
    if (!spent && this.#learned !== undefined && wall.from <= this.#learned) {
      this.#rate = wall.from;
      this.#epoch = wall.epoch;
      this.#grownUntil = now;
      this.#pump();
      return;
    }
    const span = Math.min(minute, wall.lastCut - this.#startedAt);
    const passed = spent && span >= 5000 ? this.#taken.minuteBefore(wall.lastCut) / span : Number.POSITIVE_INFINITY;
    const learned = Math.max(this.#floor, Math.min(wall.from, passed, this.#ceiling));
    this.#learned = learned;
    this.#rate = Math.max(this.#floor, learned * tuning.cutFactor);
    this.#epoch = this.#epochFrom(this.#rate, learned, 0);
    this.#grownUntil = now;
    this.#tokens = Math.min(this.#tokens, this.#burst());
    // A refill timer set at the slower rate would wake the next waiter late.
    if (this.#timer && now >= this.#pausedUntil) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    this.#onCongestion?.({ learnedPerMinute: learned * minute, ratePerMinute: this.#rate * minute, throttled: wall.throttled });
    this.#pump();
  }

  #epochFrom(from: number, target: number, grownMs: number): Epoch {
    const regainMs = Math.max(tuning.regainMs, tuning.regainRequests / target);
    return { from, target, grownMs, regainMs, steepness: Math.max(0, 1 - from / target) / regainMs ** 3 };
  }

  #burst(): number {
    return this.#fixedBurst ?? Math.max(1, Math.ceil((this.#rate * minute) / 60));
  }

  #refill(at: number): void {
    if (at <= this.#updated) return;
    this.#tokens = Math.min(this.#burst(), this.#tokens + (at - this.#updated) * this.#rate);
    this.#updated = at;
  }

  /**
   * Brings the bucket to `now`: the refill at the rate in force, then the rate the epoch has grown to. The epoch's
   * clock runs only while the budget holds requests back: a connector that asks less than it may learns nothing
   * about a higher rate, so it does not grow into a burst the service has never taken.
   */
  #advance(now: number): void {
    this.#refill(now);
    if (this.#wall !== undefined) return;
    const limited = now - this.#limitedAt <= limitedGraceMs || (this.waiting > 0 && this.#inFlight < this.#maxInFlight);
    if (limited || this.#epoch.grownMs < 0) this.#epoch.grownMs += now - this.#grownUntil;
    this.#grownUntil = now;
    const { target, steepness, regainMs, grownMs } = this.#epoch;
    if (grownMs < 0) return;
    const rate = target * (1 + steepness * (grownMs - regainMs) ** 3);
    this.#rate = Math.min(this.#ceiling, Math.max(this.#floor, rate));
  }

  #release(priority: RequestPriority): void {
    this.#inFlight -= 1;
    if (priority === 'background') this.#backgroundInFlight -= 1;
    this.#pump();
  }

  /** The next waiter allowed to start now: live first; background only with no live one waiting and a slot to spare. */
  #next(): WaitingLine<Release> | undefined {
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
        this.#limitedAt = now;
        this.#wakeIn((1 - this.#tokens) / this.#rate);
        break;
      }
      this.#tokens -= 1;
      this.#inFlight += 1;
      const priority: RequestPriority = queue === this.#live ? 'live' : 'background';
      if (priority === 'background') this.#backgroundInFlight += 1;
      let released = false;
      queue.serve(Object.assign(() => {
        if (released) return;
        released = true;
        this.#release(priority);
      }, { grantedAt: now }));
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
