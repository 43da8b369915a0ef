import type { CollectedType } from '../../contract/content-types.ts';
import type { RunSettings } from '../config/settings.ts';
import type { Logger } from '../observe/log.ts';
import type { ComponentReporter } from '../observe/telemetry.ts';
import type { StateStore } from '../state/store.ts';
import type { CommitLane } from './commit-lane.ts';

/** What every pass of a unit works with, whatever its source (the Management Activity API, Microsoft Graph). */
export interface UnitPassContext {
  /** The tenant's view of the state. */
  readonly store: StateStore;
  readonly lane: CommitLane;
  readonly settings: RunSettings;
  readonly logger: Logger;
  readonly source: ComponentReporter;
  readonly pipeline: ComponentReporter;
  /** First run only (no checkpoint yet): where to start. */
  readonly since: Date;
  readonly now: () => Date;
  readonly abortSignal?: AbortSignal | undefined;
  /** The run's totals, counted as each batch commits (so a pass cut short by a stop still counts what it committed). */
  readonly totals?: { records: number; duplicates: number };
  /** Record keys held by batches in flight, shared by the passes of this unit. */
  readonly pending?: Set<string>;
  /** Each commit of this unit: records it added, where the checkpoint and the covered range begin (progress.ts). */
  /** `reached`: the newest contentCreated delivered by a live pass's batch (how far the content type has got between checkpoints). */
  readonly onProgress?: ((contentType: CollectedType, change: { records: number; checkpoint: number | undefined; coveredFrom: number | undefined; reached?: number | undefined }) => void) | undefined;
}
