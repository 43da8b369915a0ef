/**
 * One tenant's content types collected until done (--once) or stopped, as the tests drive a run: a Delivery
 * and one UnitLoop per content type, without the CLI around them.
 */
import { serviceHealth, type CollectedType } from '../../../contract/content-types.ts';
import { defaultRunSettings, type RunSettings } from '../../../connector/config/settings.ts';
import type { RunSummary } from '../../../connector/core/counts.ts';
import { openDelivery, type DeliveryOptions } from '../../../connector/pipeline/delivery.ts';
import { UnitLoop, type CollectionOptions } from '../../../connector/pipeline/unit-loop.ts';
import type { ActivityApi } from '../../../connector/sources/activity-api/activity-api.ts';
import { auditSource } from '../../../connector/sources/activity-api/audit-source.ts';
import { BlobFetcher } from '../../../connector/sources/activity-api/blob-fetcher.ts';
import { Slots } from '../../../connector/http/slots.ts';
import type { ServiceHealthApi } from '../../../connector/sources/graph/service-health-api.ts';
import { serviceHealthSource } from '../../../connector/sources/graph/service-health-source.ts';

export interface RunUnitsOptions extends DeliveryOptions, Omit<CollectionOptions, 'settings'> {
  /** Every setting not given takes its default. */
  readonly settings?: Partial<RunSettings> | undefined;
  readonly api: ActivityApi;
  readonly graph?: ServiceHealthApi | undefined;
  readonly contentTypes: readonly CollectedType[];
  /** First run only (no checkpoint for a content type): where to start. */
  readonly since: Date;
  readonly once: boolean;
  readonly prepare?: ((contentType: CollectedType, signal: AbortSignal) => Promise<void>) | undefined;
}

export async function runUnits(options: RunUnitsOptions): Promise<RunSummary> {
  const delivery = await openDelivery(options);
  const run = { ...options, settings: { ...defaultRunSettings, ...options.settings } };
  try {
    const fetcher = new BlobFetcher(options.api, new Slots(run.settings.fetchConcurrency));
    const cursors = await options.store.cursors();
    const { prepare } = options;
    await Promise.all(options.contentTypes.map((contentType) => {
      const source = contentType === serviceHealth ? serviceHealthSource(options.graph!) : auditSource(contentType, options.api, fetcher);
      const loop = new UnitLoop({
        source, store: options.store, cursor: cursors.get(contentType), since: options.since, logger: options.logger,
        ...(prepare ? { prepare: (signal: AbortSignal) => prepare(contentType, signal) } : {}),
      }, delivery, run);
      return options.once ? loop.runOnce() : loop.run();
    }));
    const summary = delivery.finish();
    // --once: an error no retry can fix ends the run with it.
    if (options.once && delivery.fatal && !options.abortSignal?.aborted) throw delivery.fatal;
    return summary;
  } finally {
    await delivery.close();
  }
}
