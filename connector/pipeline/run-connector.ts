/**
 * A run's collection: units (content types of one tenant, or whichever units a fleet worker holds) collected by
 * their unit loops into one Delivery, their fetches sharing one concurrency limit and their commits one lane.
 */
import type { ActivityApi } from '../sources/activity-api/activity-api.ts';
import { serviceHealth, type CollectedType } from '../../contract/content-types.ts';
import type { ServiceHealthApi } from '../sources/graph/service-health-api.ts';
import { BlobFetcher, FetchSlots } from '../sources/activity-api/blob-fetcher.ts';
import { AuditSource } from '../sources/activity-api/audit-source.ts';
import { ServiceHealthSource } from '../sources/graph/service-health-source.ts';
import type { Source } from '../sources/source.ts';
import type { RunSettings } from '../config/settings.ts';
import { ConnectorError } from '../core/errors.ts';
import type { RunSummary } from '../core/counts.ts';
import type { Sink } from '../sinks/sink.ts';
import type { Logger } from '../observe/log.ts';
import type { RunObserver, Telemetry } from '../observe/telemetry.ts';
import type { StateStore } from '../state/store.ts';
import type { CursorState } from '../core/commit.ts';
import { Delivery } from './delivery.ts';
import type { ProgressListener } from './pass.ts';
import type { SinkRetryPolicy } from './sink-fanout.ts';
import { UnitLoop, unitLoopShared } from './unit-loop.ts';

export type { RunSummary } from '../core/counts.ts';
export type { RunObserver } from '../observe/telemetry.ts';

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
  readonly onProgress?: ProgressListener | undefined;
  /**
   * Before a content type's first pass, and before each pass until it succeeded (`run` starts its subscription): one
   * that fails (a permission missing for DLP.All) is that unit's error, while the others collect.
   */
  readonly prepare?: ((contentType: CollectedType, signal: AbortSignal) => Promise<void>) | undefined;
}

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
  const delivery = await Delivery.open(options);
  const shared = unitLoopShared(delivery, options);
  const slots = new FetchSlots(shared.settings.fetchConcurrency);
  const fetchers = new WeakMap<ActivityApi, BlobFetcher>();
  const sourceOf = (unit: UnitCollection): Source => {
    if (unit.contentType !== serviceHealth) {
      const fetcher = fetchers.get(unit.api) ?? new BlobFetcher(unit.api, slots);
      fetchers.set(unit.api, fetcher);
      return new AuditSource(unit.contentType, unit.api, fetcher);
    }
    if (!unit.graph) throw new ConnectorError('CONFIG_INVALID', 'ServiceHealth is to be collected but no Microsoft Graph client was given', { fix: 'report this as a connector bug' });
    return new ServiceHealthSource(unit.graph);
  };
  return {
    summary: delivery.summary,
    signal: delivery.signal,
    collect: async (unit) => {
      const loop = new UnitLoop({ source: sourceOf(unit), store: unit.store, cursor: unit.cursor, since: unit.since, logger: unit.logger ?? options.logger, tenant: unit.tenant, prepare: unit.prepare }, shared);
      await (options.once ? loop.runOnce(unit.abortSignal) : loop.run(unit.abortSignal));
    },
    get fatal() {
      return delivery.fatal;
    },
    rewindSinks: () => delivery.rewindSinks(),
    finish: () => delivery.finish(),
    close: () => delivery.close(),
  };
}
