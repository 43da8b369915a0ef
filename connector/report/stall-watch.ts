/**
 * Whether a run's collection is progressing, as the run itself sees it: the state database reachable, every sink
 * acknowledging, and, while units are held, commits coming (every pass of a unit commits, even one with nothing
 * new). Any of them stuck for longer than `--stalled-after` makes the run unready (`/readyz` 503 with the reasons)
 * and its units inactive (`o365_collection_active` 0); shorter blips do not flap either.
 */
import type { ApiRate } from '../core/commit.ts';
import type { CollectedType } from '../../contract/content-types.ts';
import type { RunObserver } from '../observe/telemetry.ts';

export interface StallWatchOptions {
  readonly stalledAfterMs: number;
  readonly now?: () => number;
  /** Why requests wait now, when a tenant's quota is spent (throttling slows commits down; the reason should say so). */
  readonly throttled?: () => string | undefined;
}

export class StallWatch {
  readonly #stalledAfterMs: number;
  readonly #now: () => number;
  readonly #throttled: (() => string | undefined) | undefined;
  /** Since when the state database cannot be used (from the start until it is opened). */
  #databaseDownSince: number | undefined;
  #databaseReason = 'not reached yet';
  /** Each sink failing now: since when, and its last error. */
  readonly #sinksFailing = new Map<string, { since: number; reason: string }>();
  #lastCommitAt: number;
  #unitsHeld = 0;

  constructor(options: StallWatchOptions) {
    this.#stalledAfterMs = options.stalledAfterMs;
    this.#now = options.now ?? Date.now;
    this.#throttled = options.throttled;
    this.#lastCommitAt = this.#now();
    this.#databaseDownSince = this.#now();
  }

  databaseLost(reason: string): void {
    this.#databaseDownSince ??= this.#now();
    this.#databaseReason = reason;
  }

  databaseBack(): void {
    this.#databaseDownSince = undefined;
  }

  sinkFailed(sink: string, reason: string): void {
    const failing = this.#sinksFailing.get(sink);
    this.#sinksFailing.set(sink, { since: failing?.since ?? this.#now(), reason });
  }

  sinkAcknowledged(sink: string): void {
    this.#sinksFailing.delete(sink);
  }

  committed(): void {
    this.#lastCommitAt = this.#now();
  }

  /** How many units the run holds now: a run holding none (the others hold them) has nothing to commit. */
  unitsHeld(count: number): void {
    if (this.#unitsHeld === 0 && count > 0) this.#lastCommitAt = this.#now();
    this.#unitsHeld = count;
  }

  /** Why collection is stalled, in words; empty while it progresses. */
  reasons(): string[] {
    const now = this.#now();
    const stalled = (since: number) => now - since > this.#stalledAfterMs;
    const seconds = (since: number) => `${Math.round((now - since) / 1000)} s`;
    const reasons: string[] = [];
    if (this.#databaseDownSince !== undefined && stalled(this.#databaseDownSince)) {
      reasons.push(`state database unreachable for ${seconds(this.#databaseDownSince)}: ${this.#databaseReason}`);
    }
    for (const [sink, failing] of this.#sinksFailing) {
      if (stalled(failing.since)) reasons.push(`sink ${sink} has acknowledged no batch for ${seconds(failing.since)}: ${failing.reason}`);
    }
    if (reasons.length === 0 && this.#unitsHeld > 0 && stalled(this.#lastCommitAt)) {
      const throttled = this.#throttled?.();
      reasons.push(`no commit for ${seconds(this.#lastCommitAt)} while holding ${this.#unitsHeld} unit(s)${throttled ? `; ${throttled}` : ''}`);
    }
    return reasons;
  }
}

/** Says how many of the run's tenants are throttled now (their requests wait for the quota), or nothing when none is. */
export function throttledNow(rates: ReadonlyArray<ApiRate | undefined>): string | undefined {
  const throttled = rates.filter((rate) => rate?.throttledNow).length;
  if (throttled === 0) return undefined;
  return `${rates.length === 1 ? 'the tenant is' : `${throttled} tenant(s) are`} throttled (AF429): requests wait for the quota, see status's request rate`;
}

/** A run's observer that tells `watch` of sinks and commits, and passes everything on to `next` (the metrics). */
export function watchedObserver(watch: StallWatch, next: RunObserver | undefined): RunObserver {
  return {
    listed: (contentType: CollectedType, tenant?: string) => next?.listed(contentType, tenant),
    fetched: (contentType: CollectedType, tenant?: string) => next?.fetched(contentType, tenant),
    sinkBatch: (sink, seconds) => {
      watch.sinkAcknowledged(sink);
      next?.sinkBatch(sink, seconds);
    },
    sinkFailed: (sink, reason) => watch.sinkFailed(sink, reason),
    committed: () => watch.committed(),
  };
}
