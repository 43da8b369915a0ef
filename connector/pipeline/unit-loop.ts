/**
 * The collection of one unit (one content type of one tenant) from its Source into a Delivery. --once
 * (`runOnce`): a live pass that drains everything available now, then a sweep of the rest of the covered range
 * (blobs listed late). Otherwise (`run`): a live pass every pollInterval and, beside them, a sweep every
 * sweepInterval at background priority, until stopped; the batch in flight is finished and committed first.
 * A pass that fails holds the checkpoint: the next one retries.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { RunSettings } from '../config/settings.ts';
import type { CursorState } from '../core/commit.ts';
import type { ConnectorError } from '../core/errors.ts';
import type { Logger } from '../observe/log.ts';
import type { RunObserver, Telemetry } from '../observe/telemetry.ts';
import type { HistorySource } from '../sources/graph/audit-history-source.ts';
import { failureOf, lastErrorOf, type Source, type SourceContext, type SourcePass } from '../sources/source.ts';
import type { StateStore } from '../state/store.ts';
import type { Delivery } from './delivery.ts';
import { runPass, type ProgressListener } from './pass.ts';

/** What the units of a run share. */
export interface CollectionOptions {
  readonly telemetry: Telemetry;
  readonly settings: RunSettings;
  readonly now?: (() => Date) | undefined;
  /** Blobs listed and fetched (metrics). */
  readonly observer?: RunObserver | undefined;
  /** Write health records (health-records.ts) into the sinks with the batches. */
  readonly emitHealth?: boolean | undefined;
  readonly onProgress?: ProgressListener | undefined;
}

export interface UnitLoopOptions {
  readonly source: Source;
  /** The tenant's view of the state. */
  readonly store: StateStore;
  /** Where the unit stands (read once by the caller with the rest of the tenant's cursors). */
  readonly cursor: CursorState | undefined;
  /** First run only (no checkpoint yet): where to start. */
  readonly since: Date;
  /** The unit's logger (a fleet labels it with the tenant). */
  readonly logger: Logger;
  /** The tenant, in the run summary's errors and the observer's counts (a fleet's). */
  readonly tenant?: string | undefined;
  /** Before the first live pass, and again before each one until it succeeds (the subscription is started). */
  readonly prepare?: ((signal: AbortSignal) => Promise<void>) | undefined;
  /** A refusal as the tenant's credential explains it (a managed identity is assigned roles, not consented to). */
  readonly explain?: ((error: ConnectorError) => ConnectorError) | undefined;
  /** Where history beyond the API's 7 days is read from (audit units); or why it cannot be, said once when there is some. */
  readonly history?: HistorySource | { readonly unavailable: string } | undefined;
}

export class UnitLoop {
  /** Where the live passes list from (ms); undefined before the first pass of a new unit. */
  checkpoint: number | undefined;
  /** Where the state's coverage begins (ms): sweeps list from here. */
  coveredFrom: number | undefined;
  /** Record keys held by batches in flight, shared by the unit's live passes and sweeps. */
  readonly pending = new Set<string>();
  /** Whether `prepare` succeeded (or there is none). */
  prepared: boolean;
  /** Why history cannot be read was said. */
  #historyExplained = false;
  readonly #unit: UnitLoopOptions;
  readonly #delivery: Delivery;
  readonly #run: CollectionOptions;

  constructor(unit: UnitLoopOptions, delivery: Delivery, run: CollectionOptions) {
    this.#unit = unit;
    this.#delivery = delivery;
    this.#run = run;
    this.checkpoint = unit.cursor?.checkpoint === undefined ? undefined : Date.parse(unit.cursor.checkpoint);
    this.coveredFrom = unit.cursor?.coveredFrom === undefined ? undefined : Date.parse(unit.cursor.coveredFrom);
    this.prepared = unit.prepare === undefined;
  }

  /** A live pass from the checkpoint; false when the unit must end (the lane failed, a stop, the unit given up). */
  live(signal?: AbortSignal): Promise<boolean> {
    return this.#live(this.#stopOf(signal));
  }

  /** The covered range listed again, for what a live pass could not see; false when the unit must end. */
  sweep(signal?: AbortSignal): Promise<boolean> {
    return this.#sweep(this.#stopOf(signal));
  }

  /** Everything listable now within the covered range: the live pass, then a sweep of the rest beside the history. */
  async runOnce(signal?: AbortSignal): Promise<void> {
    const stop = this.#stopOf(signal);
    if (await this.#live(stop)) await Promise.all([this.#sweep(stop), this.#history(stop)]);
  }

  /** Live passes and sweeps, each at its interval, until the unit ends. */
  async run(signal?: AbortSignal): Promise<void> {
    const stop = this.#stopOf(signal);
    const { settings } = this.#run;
    const every = async (intervalMs: number, pass: () => Promise<boolean>) => {
      while (await pass()) {
        await delay(intervalMs, undefined, { signal: stop }).catch(() => {});
        if (stop.aborted) break;
      }
    };
    // History begins once the first live pass has recorded what it could not list, then looks again at every sweep.
    const firstLive = Promise.withResolvers<void>();
    const live = async () => {
      const going = await this.#live(stop);
      firstLive.resolve();
      return going;
    };
    await Promise.all([
      every(settings.sweepIntervalMinutes * 60_000, () => this.#sweep(stop)),
      every(settings.pollIntervalSeconds * 1000, live),
      firstLive.promise.then(() => every(settings.sweepIntervalMinutes * 60_000, () => this.#history(stop))),
    ]);
  }

  /** A history pass over what the unit's state has still to read (read from the store: live passes add to it). */
  async #history(stop: AbortSignal): Promise<boolean> {
    const { history, store, source, logger } = this.#unit;
    if (history === undefined || stop.aborted) return !stop.aborted;
    if ('unavailable' in history) {
      if (!this.#historyExplained) {
        const state = (await store.cursors().catch(() => undefined))?.get(source.contentType)?.history;
        const [first, last] = [state?.todo[0], state?.todo.at(-1)];
        if (first && last) {
          this.#historyExplained = true;
          logger.warn({ component: 'history', contentType: source.contentType, from: new Date(first[0]).toISOString(), to: new Date(last[1]).toISOString() },
            `records older than the API's 7 days cannot be read: ${history.unavailable}; they stay to do in the state, and collection goes on with what the API lists`);
        }
      }
      return !stop.aborted;
    }
    return this.#attempt(stop, async (context) => history.pass((await store.cursors()).get(source.contentType)?.history, context), () => {});
  }

  #live(stop: AbortSignal): Promise<boolean> {
    return this.#attempt(stop, async (context) => {
      if (!this.prepared) {
        await this.#unit.prepare!(stop);
        this.prepared = true;
      }
      return this.#unit.source.live(this.checkpoint, context);
    }, (pass) => {
      this.checkpoint = pass.checkpoint;
      this.coveredFrom ??= pass.listedFrom;
    });
  }

  /** Nothing to sweep before the first checkpoint. */
  #sweep(stop: AbortSignal): Promise<boolean> {
    const { checkpoint, coveredFrom } = this;
    if (checkpoint === undefined || coveredFrom === undefined) return Promise.resolve(!stop.aborted);
    return this.#attempt(stop, async (context) => this.#unit.source.sweep(checkpoint, coveredFrom, context), () => {});
  }

  #stopOf(signal: AbortSignal | undefined): AbortSignal {
    const delivery = this.#delivery;
    return signal === undefined || signal === delivery.signal ? delivery.signal : AbortSignal.any([delivery.signal, signal]);
  }

  /** Runs one pass; false when the unit must end (the lane failed, a stop, the unit given up). */
  async #attempt(signal: AbortSignal, start: (context: SourceContext) => Promise<SourcePass | undefined>, done: (pass: SourcePass) => void): Promise<boolean> {
    const { telemetry, observer, settings, now = () => new Date() } = this.#run;
    const { source, store, logger, tenant } = this.#unit;
    const { contentType } = source;
    const [delivery, unit] = [this.#delivery, { tenant, contentType }];
    try {
      const pass = await start({
        settings, logger, signal, now, since: this.#unit.since, reporter: telemetry.component('collector', 'source'), emitHealth: this.#run.emitHealth,
        deadLetters: store.deadLetters, explain: this.#unit.explain,
        observer: observer && { listed: (type) => observer.listed(type, tenant), fetched: (type) => observer.fetched(type, tenant) },
        delivered: (contentIds) => store.deliveredBlobs(contentType, contentIds),
      });
      if (pass === undefined) return !signal.aborted;
      await runPass(pass, {
        contentType, lane: delivery.lane, store, settings, reporter: telemetry.component('pipeline', 'transform'), signal, now, pending: this.pending, totals: delivery.summary, onProgress: this.#run.onProgress,
      });
      done(pass);
      for (const error of pass.errors) delivery.failed(unit, error);
    } catch (error) {
      if (delivery.halted() || signal.aborted) return false;
      const failure = failureOf(error, this.#unit);
      if (failure.code === 'STATE_FENCED') {
        logger.warn({ component: 'pipeline', contentType, reason: failure.toLine() }, 'this worker no longer holds the unit: it stops, and its holder delivers the batch in flight again');
        return false;
      }
      delivery.failed(unit, failure, true);
      logger.error({ component: 'pipeline', contentType, code: failure.code, reason: failure.toLine() }, 'a pass failed; the checkpoint holds and the next pass retries');
      // So that `status` shows it: a pass that threw made no commit of its own.
      await delivery.lane.commit(undefined, () => ({ contentType, at: now().toISOString(), lastError: lastErrorOf(failure, now()) }), store).catch(() => {});
    }
    return !signal.aborted;
  }
}
