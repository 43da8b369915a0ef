/**
 * The Source contract: what the pipeline asks of any source of records (the Management Activity API, Microsoft
 * Graph). A source knows one unit's live pass (from its checkpoint) and its sweep (the covered range again); it
 * never sees the sinks, the commit lane or the store: it yields items, and says what a commit of them changes.
 */
import type { CollectedType } from '../../contract/content-types.ts';
import type { RunSettings } from '../config/settings.ts';
import type { Commit, LastError } from '../core/commit.ts';
import type { Counts } from '../core/counts.ts';
import { toConnectorError, type ConnectorError } from '../core/errors.ts';
import type { RawRecord } from '../core/records.ts';
import type { Logger } from '../observe/log.ts';
import { redactSecrets } from '../observe/secret-values.ts';
import type { ComponentReporter, RunObserver } from '../observe/telemetry.ts';

/** What a commit changes in a unit's state, the sink positions aside (the lane adds them). */
export type CommitChange = Omit<Commit, 'sinkPositions'>;

/** What a source yields: records in order, acknowledged with the batch that holds the last of them. */
export interface SourceItem {
  readonly records: readonly RawRecord[];
  readonly bytes: number;
  /** Gives the records' bodies back for reuse, once their batch committed. */
  readonly release?: (() => void) | undefined;
  /** The batch ends with this item (a Graph page commits on its own). */
  readonly cut?: true;
}

/** What a batch of items adds to the commit that delivers it. */
export interface Acknowledgement {
  /** Written to the sinks after the batch's own records (health records). */
  readonly records: readonly RawRecord[];
  /** What the pipeline cannot count itself (blobs, expired, set aside, late). */
  readonly counts: Partial<Counts>;
  /** The newest contentCreated a live pass delivered with the batch (the progress line's "reached"). */
  readonly reached?: number | undefined;
  /** The commit's change; runs only once every sink acknowledged the batch, so it may move the checkpoint. */
  change(): CommitChange;
}

export interface SourcePass<Item extends SourceItem = SourceItem> extends AsyncIterable<Item> {
  /** Where this pass began listing (ms): where the state's coverage begins on a first run. */
  readonly listedFrom: number | undefined;
  /** Where the checkpoint stands (ms), as far as the commits so far moved it. */
  readonly checkpoint: number | undefined;
  /** Errors that ended or held back this pass (the checkpoint holds; the next pass retries). */
  readonly errors: readonly ConnectorError[];
  /** The items whose last record a batch holds (their records taken: they are in the batch), before it is written. */
  acknowledge(items: readonly Item[], now: Date): Acknowledgement;
  /** After the last item: the pass's last commit (its error or none, the checkpoint, what can be forgotten). */
  end(): Promise<Acknowledgement>;
}

/** What a pass works with: settings, lookups into the unit's state, and where it reports. */
export interface SourceContext {
  readonly settings: RunSettings;
  readonly logger: Logger;
  /** The source's telemetry component ('collector'). */
  readonly reporter: ComponentReporter;
  /** Blobs listed and fetched (metrics), already told the unit's tenant. */
  readonly observer?: Pick<RunObserver, 'listed' | 'fetched'> | undefined;
  readonly signal: AbortSignal;
  /** First run only (no checkpoint yet): where to start. */
  readonly since: Date;
  readonly now: () => Date;
  /** Which of these contentIds were delivered before. */
  delivered(contentIds: readonly string[]): Promise<Set<string>>;
  /** Where elements that are not records are set aside, in words for a log line. */
  readonly deadLetters: string;
  /** Write health records (health-records.ts) into the sinks with the batches. */
  readonly emitHealth?: boolean | undefined;
  /** A refusal as the tenant's credential explains it (a managed identity is assigned roles, not consented to). */
  readonly explain?: ((error: ConnectorError) => ConnectorError) | undefined;
}

export interface Source {
  readonly contentType: CollectedType;
  live(checkpoint: number | undefined, context: SourceContext): SourcePass;
  /** The covered range listed again, for what a live pass could not see; undefined when there is nothing to sweep. */
  sweep(checkpoint: number, coveredFrom: number, context: SourceContext): SourcePass | undefined;
}

/** What went wrong, as the user reads it: the error as a ConnectorError, explained for the tenant's credential. */
export function failureOf(error: unknown, context: Pick<SourceContext, 'explain'>): ConnectorError {
  const failure = toConnectorError(error);
  return context.explain?.(failure) ?? failure;
}

export function lastErrorOf(error: unknown, now: Date): LastError {
  const failure = toConnectorError(error);
  // Kept in the state and shown by status: an answer that echoed a secret must not put it there.
  return { code: failure.code, message: redactSecrets(failure.toLine()), at: now.toISOString() };
}
