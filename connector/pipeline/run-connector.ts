/**
 * A run's collection: units (content types of one tenant, or whichever units a fleet worker holds) collected by
 * their unit loops into one Delivery, their fetches sharing one concurrency limit and their commits one lane.
 */
import type { ActivityApi } from '../sources/activity-api/activity-api.ts';
import { serviceHealth, type CollectedType } from '../../contract/content-types.ts';
import type { ServiceHealthApi } from '../sources/graph/service-health-api.ts';
import { BlobFetcher, FetchSlots } from '../sources/activity-api/blob-fetcher.ts';
import { auditSource } from '../sources/activity-api/audit-source.ts';
import { serviceHealthSource } from '../sources/graph/service-health-source.ts';
import type { Source } from '../sources/source.ts';
import { defaultRunSettings } from '../config/settings.ts';
import { ConnectorError } from '../core/errors.ts';
import type { RunSummary } from '../core/counts.ts';
import type { Logger } from '../observe/log.ts';
import { openDelivery, type DeliveryOptions } from './delivery.ts';
import { UnitLoop, type CollectionOptions, type UnitLoopOptions } from './unit-loop.ts';

export type { RunSummary } from '../core/counts.ts';
export type { RunObserver } from '../observe/telemetry.ts';

export interface RunConnectorOptions extends DeliveryOptions, CollectionOptions {
  readonly api: ActivityApi;
  /** Microsoft Graph's service announcements: required when contentTypes holds ServiceHealth. */
  readonly graph?: ServiceHealthApi | undefined;
  readonly contentTypes: readonly CollectedType[];
  /** First run only (no checkpoint for a content type): where to start. Later runs resume from the store. */
  readonly since: Date;
  readonly once: boolean;
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

/** One unit's collection within an open collection: one content type of one tenant. */
export interface UnitCollection extends Omit<UnitLoopOptions, 'source' | 'logger'> {
  readonly api: ActivityApi;
  /** The tenant's Microsoft Graph client: required for the ServiceHealth unit. */
  readonly graph?: ServiceHealthApi | undefined;
  readonly contentType: CollectedType;
  /** Ends this unit only (the worker gave it up or lost it); the run's own stop ends every unit. */
  readonly abortSignal?: AbortSignal | undefined;
  /** The unit's logger (a fleet labels it with the tenant); the run's by default. */
  readonly logger?: Logger | undefined;
}

/**
 * Opens the sinks (each checked before its first batch) and the commit lane they share, for units to collect
 * into: one tenant's content types (runConnector), or whichever units a fleet worker holds. `options.store`
 * holds the process's sink positions.
 */
export async function openCollection(options: Omit<RunConnectorOptions, 'api' | 'graph' | 'contentTypes' | 'since'>) {
  const delivery = await openDelivery(options);
  const slots = new FetchSlots(options.settings?.fetchConcurrency ?? defaultRunSettings.fetchConcurrency);
  const fetchers = new WeakMap<ActivityApi, BlobFetcher>();
  const sourceOf = (unit: UnitCollection): Source => {
    if (unit.contentType !== serviceHealth) {
      const fetcher = fetchers.get(unit.api) ?? new BlobFetcher(unit.api, slots);
      fetchers.set(unit.api, fetcher);
      return auditSource(unit.contentType, unit.api, fetcher);
    }
    if (!unit.graph) throw new ConnectorError('CONFIG_INVALID', 'ServiceHealth is to be collected but no Microsoft Graph client was given', { fix: 'report this as a connector bug' });
    return serviceHealthSource(unit.graph);
  };
  return Object.assign(delivery, {
    /** Collects one unit until stopped (or, --once, until everything listable now is delivered). */
    collect: async (unit: UnitCollection) => {
      const loop = new UnitLoop({ ...unit, source: sourceOf(unit), logger: unit.logger ?? options.logger }, delivery, options);
      await (options.once ? loop.runOnce(unit.abortSignal) : loop.run(unit.abortSignal));
    },
  });
}
