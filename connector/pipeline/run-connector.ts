/**
 * The collection loop. Every content type runs its own passes, so a slow or failing one never holds the
 * others back; their fetches share one concurrency limit and their commits one lane (the sinks are shared).
 * --once: a live pass per content type that drains everything available now, then a sweep of the rest of the
 * covered range (blobs listed late), then return. Otherwise: a live pass every pollInterval and, beside them, a
 * sweep every sweepInterval at background priority, until the abort signal fires; the batches in flight are
 * finished and committed first.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { ActivityApi } from '../sources/activity-api/activity-api.ts';
import { serviceHealth, type CollectedType, type ContentType } from '../../contract/content-types.ts';
import type { ServiceHealthApi } from '../sources/graph/service-health-api.ts';
import { BlobFetcher, FetchSlots } from '../sources/activity-api/blob-fetcher.ts';
import { sweepWindows } from '../sources/activity-api/windows.ts';
import { defaultRunSettings, type RunSettings } from '../config/settings.ts';
import { ConnectorError, SinkError } from '../core/errors.ts';
import type { Sink } from '../sinks/sink.ts';
import type { Logger } from '../observe/log.ts';
import type { Telemetry } from '../observe/telemetry.ts';
import type { StateStore } from '../state/store.ts';
import type { CursorState } from '../core/commit.ts';
import { CommitLane } from './commit-lane.ts';
import { lastErrorOf, runPass, toConnectorError, type PassContext, type PassOutcome } from './content-type-pass.ts';
import { runServiceHealthPass, serviceHealthSweepFrom, type ServiceHealthPassContext } from './service-health-pass.ts';
import type { SinkRetryPolicy } from './sink-fanout.ts';

export interface RunConnectorOptions {
  readonly api: ActivityApi;
  /** Microsoft Graph's service announcements: required when contentTypes holds ServiceHealth. */
  readonly graph?: ServiceHealthApi | undefined;
  readonly contentTypes: readonly CollectedType[];
  /** First run only (no checkpoint for a content type): where to start. Later runs resume from the store. */
  readonly since: Date;
  readonly once: boolean;
  /** Opened (and locked) by the caller; closed by the caller. Holds the sink positions. */
  readonly store: StateStore;
  readonly sinks: readonly Sink[];
  readonly telemetry: Telemetry;
  readonly logger: Logger;
  readonly settings?: Partial<RunSettings>;
  readonly abortSignal?: AbortSignal | undefined;
  readonly now?: () => Date;
  readonly sinkRetry?: SinkRetryPolicy;
  /** What metrics count in the process (metrics.ts): blobs listed and fetched, sink batch times. */
  readonly observer?: RunObserver;
  /** Write health records into the sinks (health-records.ts). */
  readonly emitHealth?: boolean;
  /** Each commit, per content type (the terminal's progress lines). */
  readonly onProgress?: PassContext['onProgress'];
  /**
   * Before a content type's first pass, and before each pass until it succeeded (`run` starts its subscription): one
   * that fails (a permission missing for DLP.All) is that unit's error, while the others collect.
   */
  readonly prepare?: ((contentType: CollectedType, signal: AbortSignal) => Promise<void>) | undefined;
}

export interface RunObserver {
  /** Blobs listed (new ones: not delivered before); the tenant when a fleet collects several. */
  listed(contentType: CollectedType, tenant?: string): void;
  fetched(contentType: CollectedType, tenant?: string): void;
  sinkBatch(sink: string, seconds: number): void;
  /** A sink did not acknowledge a batch (it is sent again). */
  sinkFailed?(sink: string, reason: string): void;
  /** A commit reached the state store. */
  committed?(): void;
}

export interface RunSummary {
  records: number;
  blobs: number;
  duplicates: number;
  expired: number;
  /** Elements that were not audit records, set aside to the state directory's dead-letter file. */
  setAside: number;
  /** Blobs the sweeps delivered: listed after their window had been. */
  late: number;
  errors: Array<{ tenant?: string; contentType: CollectedType; code: string; message: string }>;
}

/** Errors no retry can fix: a `--once` run stops on them instead of reporting and carrying on. */
const fatalCodes = new Set(['AF10001', 'AF20010', 'AUDIT_LOG_DISABLED', 'UNAUTHORIZED', 'AF20020', 'AF20023', 'GRAPH_FORBIDDEN', 'GRAPH_UNAUTHORIZED']);

export async function runConnector(options: RunConnectorOptions): Promise<RunSummary> {
  const collection = await openCollection(options);
  try {
    const cursors = await options.store.cursors();
    const { prepare } = options;
    await Promise.all(options.contentTypes.map((contentType) => collection.collect({
      api: options.api, graph: options.graph, contentType, store: options.store, since: options.since, cursor: cursors.get(contentType),
      ...(prepare ? { prepare: (signal: AbortSignal) => prepare(contentType, signal) } : {}),
    })));
    const summary = collection.finish();
    // --once: an error no retry can fix ends the run with it (a fleet reports every unit's errors instead).
    if (options.once && collection.fatal && !options.abortSignal?.aborted) throw collection.fatal;
    return summary;
  } finally {
    await collection.close();
  }
}

/** One unit's collection within an open Collection: one content type of one tenant. */
export interface UnitCollection {
  readonly api: ActivityApi;
  /** The tenant's Microsoft Graph client: required for the ServiceHealth unit. */
  readonly graph?: ServiceHealthApi | undefined;
  readonly contentType: CollectedType;
  /** The tenant's view of the state. */
  readonly store: StateStore;
  readonly since: Date;
  /** Where the unit stands (read once by the caller with the rest of the tenant's cursors). */
  readonly cursor: CursorState | undefined;
  /** Ends this unit only (the worker gave it up or lost it); the run's own stop ends every unit. */
  readonly abortSignal?: AbortSignal | undefined;
  /** The unit's logger (a fleet labels it with the tenant); the run's by default. */
  readonly logger?: Logger | undefined;
  /** Before the first live pass, and again before each pass until it succeeds (a fleet starts the tenant's subscription). */
  readonly prepare?: ((signal: AbortSignal) => Promise<void>) | undefined;
  /** The tenant, in the run summary's errors. */
  readonly tenant?: string | undefined;
}

/** The two passes of a unit, whatever its source: a live pass from the checkpoint, and a sweep of the covered range (undefined when none is due). */
interface UnitPasses {
  live(checkpoint: number | undefined): Promise<PassOutcome>;
  sweep(checkpoint: number, coveredFrom: number): (() => Promise<PassOutcome>) | undefined;
}

export interface Collection {
  /** The summary so far, shared by every unit. */
  readonly summary: RunSummary;
  /** Ends when every unit must end: the run's stop, or a lane failure (a sink refusing for good, a failed commit). */
  readonly signal: AbortSignal;
  /** Collects one unit until stopped (or, --once, until everything listable now is delivered). */
  collect(unit: UnitCollection): Promise<void>;
  /** The first error no retry can fix (consent, auditing off, a subscription disabled), when one happened. */
  readonly fatal: ConnectorError | undefined;
  /** Cuts the sinks back to the positions last committed (after a lost state session; every unit stopped). */
  rewindSinks(): Promise<void>;
  /** The summary of a run that ended; throws the lane's failure (a sink refusing for good, a failed commit). */
  finish(): RunSummary;
  close(): Promise<void>;
}

/**
 * Opens the sinks (each checked before its first batch) and the commit lane they share, for units to collect
 * into: one tenant's content types (runConnector), or whichever units a fleet worker holds. `options.store`
 * holds the process's sink positions.
 */
export async function openCollection(options: Omit<RunConnectorOptions, 'api' | 'graph' | 'contentTypes' | 'since'>): Promise<Collection> {
  const { store, logger, abortSignal } = options;
  const settings: RunSettings = { ...defaultRunSettings, ...options.settings };
  const now = options.now ?? (() => new Date());
  const summary: RunSummary = { records: 0, blobs: 0, duplicates: 0, expired: 0, setAside: 0, late: 0, errors: [] };
  // Ends every loop when the lane fails (a sink refusing for good, a failed commit), as a stop does.
  const halt = new AbortController();
  const signal = abortSignal ? AbortSignal.any([abortSignal, halt.signal]) : halt.signal;
  const opened: Sink[] = [];
  const close = async () => {
    for (const sink of opened) await sink.close().catch(() => {});
  };
  let lane: CommitLane;
  try {
    const positions = await store.sinkPositions();
    for (const sink of options.sinks) {
      await sink.open(positions[sink.name], abortSignal ? { abortSignal } : {});
      opened.push(sink);
      await checkSink(sink, logger, abortSignal);
    }
    lane = new CommitLane(store, options.sinks, positions, {
      logger, stopSignal: abortSignal, ...(options.sinkRetry ? { retry: options.sinkRetry } : {}),
      ...(options.observer ? { onAcknowledged: options.observer.sinkBatch.bind(options.observer) } : {}),
      ...(options.observer?.sinkFailed ? { onRefused: options.observer.sinkFailed.bind(options.observer) } : {}),
      ...(options.observer?.committed ? { onCommitted: options.observer.committed.bind(options.observer) } : {}),
    });
    await lane.recordStartingPositions(now().toISOString());
  } catch (error) {
    await close();
    throw error;
  }
  const slots = new FetchSlots(settings.fetchConcurrency);
  const fetchers = new WeakMap<ActivityApi, BlobFetcher>();
  const source = options.telemetry.component('collector', 'source');
  const pipeline = options.telemetry.component('pipeline', 'transform');
  let fatal: ConnectorError | undefined;
  const observerOf = (tenant: string | undefined): PassContext['observer'] => {
    const observer = options.observer;
    if (!observer || tenant === undefined) return observer;
    return { listed: (contentType) => observer.listed(contentType, tenant), fetched: (contentType) => observer.fetched(contentType, tenant) };
  };

  const collect = async (unit: UnitCollection) => {
    const { contentType, store: unitStore } = unit;
    const unitLogger = unit.logger ?? logger;
    const tenantOf = unit.tenant === undefined ? {} : { tenant: unit.tenant };
    const unitSignal = unit.abortSignal ? AbortSignal.any([signal, unit.abortSignal]) : signal;
    const fetcher = fetchers.get(unit.api) ?? new BlobFetcher(unit.api, slots);
    fetchers.set(unit.api, fetcher);

    /** Runs one pass (live or sweep); false when the unit must end (the lane failed, a stop, the unit given up). */
    const attempt = async (pass: () => Promise<PassOutcome>, onDone: (outcome: PassOutcome) => void): Promise<boolean> => {
      try {
        const outcome = await pass();
        onDone(outcome);
        for (const error of outcome.errors) {
          summary.errors.push({ ...tenantOf, contentType, code: error.code, message: error.toLine() });
          if (fatalCodes.has(error.code)) fatal ??= error;
        }
      } catch (error) {
        if (lane.failure !== undefined) {
          halt.abort(lane.failure);
          return false;
        }
        if (unitSignal.aborted) return false;
        const failure = toConnectorError(error);
        if (failure.code === 'STATE_FENCED') {
          unitLogger.warn({ component: 'pipeline', contentType, reason: failure.toLine() }, 'this worker no longer holds the unit: it stops, and its holder delivers the batch in flight again');
          return false;
        }
        summary.errors.push({ ...tenantOf, contentType, code: failure.code, message: failure.toLine() });
        fatal ??= failure;
        unitLogger.error({ component: 'pipeline', contentType, code: failure.code, reason: failure.toLine() }, 'a pass failed; the checkpoint holds and the next pass retries');
        // So that `status` shows it: a pass that threw made no commit of its own.
        await lane.commit(undefined, () => ({ contentType, at: now().toISOString(), lastError: lastErrorOf(failure, now()) }), unitStore).catch(() => {});
      }
      return !unitSignal.aborted;
    };

    const pending = new Set<string>();
    let prepared = unit.prepare === undefined;
    /** Prepares the unit before its first pass, and before each pass until that succeeded (a fleet starts the subscription). */
    const preparedPass = async <T>(pass: () => Promise<T>): Promise<T> => {
      if (!prepared) {
        await unit.prepare!(unitSignal);
        prepared = true;
      }
      return pass();
    };
    /** Runs `pass` every `intervalMs` until it says the unit ends. */
    const every = async (intervalMs: number, pass: () => Promise<boolean>): Promise<void> => {
      while (await pass()) {
        await delay(intervalMs, undefined, { signal: unitSignal }).catch(() => {});
        if (unitSignal.aborted) break;
      }
    };
    const passes = contentType === serviceHealth ? serviceHealthPasses() : auditPasses(contentType);
    let checkpoint = unit.cursor?.checkpoint === undefined ? undefined : Date.parse(unit.cursor.checkpoint);
    let coveredFrom = unit.cursor?.coveredFrom === undefined ? undefined : Date.parse(unit.cursor.coveredFrom);
    const live = () => attempt(() => preparedPass(() => passes.live(checkpoint)), (pass) => {
      checkpoint = pass.checkpoint;
      coveredFrom ??= pass.listedFrom;
    });
    /** The covered range listed again, for what a live pass could not see; nothing to do before a checkpoint. */
    const sweep = () => {
      const pass = checkpoint === undefined || coveredFrom === undefined ? undefined : passes.sweep(checkpoint, coveredFrom);
      return pass ? attempt(pass, () => {}) : Promise.resolve(!unitSignal.aborted);
    };
    if (options.once) {
      // Everything listable now within the covered range: the live pass, then a sweep of the rest.
      if (await live()) await sweep();
      return;
    }
    await Promise.all([every(settings.sweepIntervalMinutes * 60_000, sweep), every(settings.pollIntervalSeconds * 1000, live)]);

    /** An audit content type: live passes from the checkpoint; sweeps of the older windows, for blobs Microsoft listed late. */
    function auditPasses(auditType: ContentType): UnitPasses {
      const context: PassContext = {
        contentType: auditType, api: unit.api, store: unitStore, fetcher, lane, settings, logger: unitLogger, source, pipeline, since: unit.since, now,
        abortSignal: unitSignal, totals: summary, pending, onProgress: options.onProgress, emitHealth: options.emitHealth, observer: observerOf(unit.tenant),
      };
      return {
        live: (from) => runPass(context, from),
        sweep: (from, covered) => {
          const windows = sweepWindows({ coveredFrom: covered, checkpoint: from, overlapMs: settings.overlapMinutes * 60_000, now: now(), skewMs: unit.api.clockSkewMs });
          if (windows.length === 0) return undefined;
          return async () => {
            const started = performance.now();
            unitLogger.info({ component: 'sweep', contentType, from: windows[0]!.start.toISOString(), to: windows.at(-1)!.end.toISOString() }, 'sweep started');
            const pass = await runPass({ ...context, sweep: windows }, from);
            unitLogger.info({ component: 'sweep', contentType, seconds: Math.round(performance.now() - started) / 1000, lateBlobs: pass.late, errors: pass.errors.length }, 'sweep ended');
            return pass;
          };
        },
      };
    }

    /** Microsoft Graph's service announcements: no subscription; sweeps list every change still remembered, for a version that slipped between two pages. */
    function serviceHealthPasses(): UnitPasses {
      const graph = unit.graph;
      if (!graph) throw new ConnectorError('CONFIG_INVALID', 'ServiceHealth is to be collected but no Microsoft Graph client was given', { fix: 'report this as a connector bug' });
      const healthContext: ServiceHealthPassContext = {
        graph, store: unitStore, lane, settings, logger: unitLogger, source, pipeline, since: unit.since, now,
        abortSignal: unitSignal, totals: summary, pending, onProgress: options.onProgress,
      };
      return {
        live: (from) => runServiceHealthPass(healthContext, from),
        sweep: (from, covered) => {
          const sweepFrom = Math.max(covered, serviceHealthSweepFrom(now().getTime() + graph.clockSkewMs, settings.dedupeRetentionHours));
          return () => runServiceHealthPass({ ...healthContext, sweepFrom }, from);
        },
      };
    }
  };

  return {
    summary,
    signal,
    collect,
    get fatal() {
      return fatal;
    },
    rewindSinks: () => lane.rewind(),
    finish: () => {
      if (lane.failure !== undefined) throw lane.failure;
      return summary;
    },
    close,
  };
}

/**
 * Tries a sink before the first batch: what can never work (a refused token, a missing privilege, an untrusted
 * certificate) stops the run at once with the fix; what may pass (a receiver restarting) is logged and left to the
 * batches' retries.
 */
async function checkSink(sink: Sink, logger: Logger, abortSignal: AbortSignal | undefined): Promise<void> {
  if (!sink.check) return;
  try {
    const verified = await sink.check(abortSignal ? { abortSignal } : {});
    logger.info({ component: 'sink', sink: sink.name, verified }, 'sink checked');
  } catch (error) {
    if (abortSignal?.aborted) throw error;
    const failure = toConnectorError(error);
    if (!failure.retryable) throw new SinkError(failure.code, `sink ${sink.name}: ${failure.message}`, { ...(failure.fix ? { fix: failure.fix } : {}), cause: failure });
    logger.warn({ component: 'sink', sink: sink.name, code: failure.code, reason: failure.toLine() }, 'sink check failed; the first batch will try again');
  }
}
