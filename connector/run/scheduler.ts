/**
 * Which units this worker collects. Every tick it compares the units the tenants ask for with the ones it runs:
 * it stops the units of tenants gone or changed, gives up units beyond its fair share (units / live workers,
 * rounded up) and claims free ones up to it. Exclusivity is the store's (UnitClaims: PostgreSQL advisory locks
 * held by the worker's session); this module only decides what to ask for. When the session is lost, every unit
 * stops at once (their commits would be refused anyway), and the worker reconnects, cuts its sinks back to the last
 * committed position, and claims anew.
 */
import { createHash } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { ConnectorError } from '../core/errors.ts';
import { retry } from '../http/retry.ts';
import { reconnectPolicy } from './reconnect.ts';
import type { Logger } from '../observe/log.ts';
import { type UnitClaims } from '../state/store.ts';
import { unitName, type UnitKey } from '../core/commit.ts';

export interface UnitSchedulerOptions {
  readonly claims: UnitClaims;
  readonly logger: Logger;
  /** This worker's name: it orders the free units differently on each worker, so that they rarely race for one. */
  readonly workerName: string;
  /** Between two looks at the claims: how soon a dead worker's units are taken over. */
  readonly tickMs: number;
  /** Every unit the tenants ask for now, each with its tenant's generation (a changed file restarts its units). */
  desired(): ReadonlyArray<{ readonly unit: UnitKey; readonly generation: number }>;
  /** Collects the unit until the signal fires (or, --once, until done); never rejects for the unit's own errors. */
  collect(unit: UnitKey, signal: AbortSignal): Promise<void>;
  /** --once: each unit is collected once; the scheduler ends when none is left that it can claim. */
  readonly once?: boolean;
  /**
   * After a lost session is reconnected, before any unit runs again: the sinks are brought back to the last committed
   * position (what was written but not committed is delivered again). Failing, it is tried again with the reconnect.
   */
  readonly beforeClaimingAgain?: () => Promise<void>;
  /** Log each claim (a fleet's workers share units; one tenant's run has nothing to share, and says nothing of it). */
  readonly logClaims?: boolean;
  /** Called after each tick, with what runs (tests and status). */
  readonly onTick?: (running: readonly UnitKey[]) => void;
}

interface RunningUnit {
  readonly unit: UnitKey;
  readonly generation: number;
  readonly stop: AbortController;
  readonly done: Promise<void>;
  readonly since: number;
}

export class UnitScheduler {
  readonly #options: UnitSchedulerOptions;
  readonly #running = new Map<string, RunningUnit>();
  /** --once: units collected to the end. */
  readonly #finished = new Set<string>();
  #lost: Error | undefined;
  #unitEnded = new AbortController();

  constructor(options: UnitSchedulerOptions) {
    this.#options = options;
    options.claims.onLost((reason) => this.#onLost(reason));
  }

  running(): UnitKey[] {
    return [...this.#running.values()].map((entry) => entry.unit);
  }

  /** Until `stop` fires (or, --once, until every unit was collected or is held elsewhere); then stops every unit. */
  async run(stop: AbortSignal): Promise<void> {
    const { logger } = this.#options;
    try {
      while (!stop.aborted) {
        if (this.#lost) {
          await this.#stopAll();
          const back = await retry(async () => {
            await this.#options.claims.reconnect();
            await this.#options.beforeClaimingAgain?.();
          }, {
            policy: reconnectPolicy, signal: stop, judge: () => ({ retry: true }),
            onRetry: ({ error, delayMs }) => logger.warn({ component: 'fleet', reason: error.message, retryInSeconds: delayMs / 1000 }, 'the state database cannot be reached: no unit runs until it can'),
          }).then(() => true, () => false);
          if (!back) continue;
          logger.info({ component: 'fleet' }, 'reconnected to the state database: claiming units again');
          this.#lost = undefined;
        }
        // --once: a unit that ends (during this look or after it) wakes the next look at once, so that the run ends as soon as its last unit does.
        this.#unitEnded = new AbortController();
        let idle = false;
        try {
          idle = await this.#tick(stop);
        } catch (error) {
          // A failed look at the claims is the session's trouble: the loss listener decides; the next tick retries.
          if (!this.#lost) logger.warn({ component: 'fleet', reason: error instanceof ConnectorError ? error.toLine() : (error as Error).message }, 'could not balance units this time: the next look tries again');
        }
        this.#options.onTick?.(this.running());
        if (this.#options.once && idle) return;
        await delay(this.#options.tickMs, undefined, { signal: AbortSignal.any([stop, this.#unitEnded.signal]) }).catch(() => {});
      }
    } finally {
      await this.#stopAll();
    }
  }

  /** One look at the claims; true (--once) when nothing runs and nothing more could be claimed. */
  async #tick(stop: AbortSignal): Promise<boolean> {
    const { claims, logger } = this.#options;
    const desired = new Map(this.#options.desired().map((entry) => [unitName(entry.unit), entry]));
    // Units of a tenant gone, or of a tenant whose file changed (its units start again with the new configuration).
    for (const [name, entry] of this.#running) {
      const wanted = desired.get(name);
      if (!wanted || wanted.generation !== entry.generation) await this.#give(name, wanted ? 'its tenant changed' : 'its tenant is gone');
    }
    const open = [...desired.values()].filter((entry) => !this.#running.has(unitName(entry.unit)) && !this.#finished.has(unitName(entry.unit)));
    const workers = Math.max(1, await claims.workers());
    const share = this.#options.once ? desired.size : Math.ceil(desired.size / workers);
    // Beyond the share (a worker joined): the units held longest are given up first, to the workers below theirs.
    const excess = [...this.#running.values()].sort((a, b) => a.since - b.since).slice(0, Math.max(0, this.#running.size - share));
    for (const entry of excess) await this.#give(unitName(entry.unit), 'another worker joined: fair share');
    if (this.#running.size >= share) return false;
    if (stop.aborted || this.#lost) return false;
    const generations = new Map(open.map((entry) => [unitName(entry.unit), entry.generation]));
    const taken = await claims.tryClaimSome(this.#order(open).map((entry) => entry.unit), share - this.#running.size);
    let claimed = 0;
    for (const unit of taken) {
      if (this.#running.has(unitName(unit))) continue;
      claimed += 1;
      this.#start(unit, generations.get(unitName(unit))!);
    }
    if (claimed > 0 && this.#options.logClaims !== false) logger.info({ component: 'fleet', claimed, running: this.#running.size, share, workers }, 'units claimed');
    return this.#running.size === 0 && claimed === 0;
  }

  #start(unit: UnitKey, generation: number): void {
    const name = unitName(unit);
    const stop = new AbortController();
    const done = (async () => {
      try {
        await this.#options.collect(unit, stop.signal);
      } catch (error) {
        this.#options.logger.error({ component: 'fleet', unit: name, reason: (error as Error).message }, 'a unit ended on an error: it is released, and claimed again');
      } finally {
        // --once: a unit that ended on an error counts as collected too (its error is in the run's summary).
        if (this.#options.once && !stop.signal.aborted) this.#finished.add(name);
        this.#running.delete(name);
        if (!this.#lost) await this.#options.claims.release(unit).catch(() => {});
        if (this.#options.once) this.#unitEnded.abort();
      }
    })();
    this.#running.set(name, { unit, generation, stop, done, since: performance.now() });
  }

  /** Stops a unit (its batch in flight is committed first) and releases it. */
  async #give(name: string, why: string): Promise<void> {
    const entry = this.#running.get(name);
    if (!entry) return;
    this.#options.logger.info({ component: 'fleet', unit: name, why }, 'giving up a unit');
    entry.stop.abort(new Error(why));
    await entry.done;
  }

  #onLost(reason: Error): void {
    if (this.#lost) return;
    this.#lost = reason;
    this.#options.logger.error({ component: 'fleet', reason: reason.message, units: this.#running.size }, 'the session with the state database ended: every unit stops now (another worker may hold them already)');
    for (const entry of this.#running.values()) entry.stop.abort(reason);
  }

  async #stopAll(): Promise<void> {
    for (const entry of this.#running.values()) entry.stop.abort(new Error('stopping'));
    await Promise.all([...this.#running.values()].map((entry) => entry.done));
  }

  /** The free units in an order of this worker's own (rendezvous hashing), so that workers try different ones first. */
  #order<T extends { readonly unit: UnitKey }>(entries: readonly T[]): T[] {
    const rank = (unit: UnitKey) => createHash('sha1').update(`${this.#options.workerName}\n${unitName(unit)}`).digest().readUInt32BE(0);
    return [...entries].sort((a, b) => rank(a.unit) - rank(b.unit));
  }
}
