/**
 * One pass of one content type, as stages with one job each: plan windows from the checkpoint (less the
 * overlap) → list the blobs not delivered before → fetch ahead, in order, with a bound → batch (dropping
 * repeated records) → commit through the lane. The checkpoint moves only past blobs whose every record every
 * sink acknowledged; a blob that could not be fetched, or a window that could not be listed, holds it.
 */
import { redactSecrets } from '../status/secret-values.ts';
import type { ActivityApi, TimeWindow } from '../api/activity-api.ts';
import type { ContentType } from '../api/content-types.ts';
import type { BlobFetcher } from '../collect/blob-fetcher.ts';
import { listNewBlobs } from '../collect/content-lister.ts';
import { fetchAhead } from '../collect/fetch-ahead.ts';
import { checkpointCeiling, planWindows } from '../collect/windows.ts';
import type { RunSettings } from '../config/settings.ts';
import { ConnectorError } from '../errors.ts';
import type { Logger } from '../status/log.ts';
import type { ComponentReporter } from '../status/telemetry.ts';
import { deadLetterFileName } from '../state/dead-letter.ts';
import type { Commit, LastError, StateStore } from '../state/store.ts';
import { batchRecords, isEmpty, type Batch } from './batcher.ts';
import { CheckpointTracker } from './checkpoint-tracker.ts';
import type { CommitLane } from './commit-lane.ts';
import { RecordDeduplicator } from './record-deduplicator.ts';

const minute = 60_000;
const hour = 60 * minute;

export interface PassContext {
  readonly contentType: ContentType;
  readonly api: ActivityApi;
  readonly store: StateStore;
  readonly fetcher: BlobFetcher;
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
  readonly totals?: { records: number; blobs: number; duplicates: number; expired: number; setAside: number };
}

export interface PassOutcome {
  records: number;
  blobs: number;
  duplicates: number;
  expired: number;
  /** Elements that were not audit records, set aside to the dead-letter file. */
  setAside: number;
  /** Where the checkpoint stands after the pass (ms), for the next pass. */
  checkpoint: number | undefined;
  /** Errors that ended or held back this pass (the checkpoint holds; the next pass retries). */
  errors: ConnectorError[];
}

export function toConnectorError(error: unknown): ConnectorError {
  if (error instanceof ConnectorError) return error;
  return new ConnectorError('ERROR', String((error as Error)?.message ?? error), { cause: error });
}

export function lastErrorOf(error: unknown, now: Date): LastError {
  const failure = toConnectorError(error);
  // Kept in the state and shown by status: an answer that echoed a secret must not put it there.
  return { code: failure.code, message: redactSecrets(failure.toLine()), at: now.toISOString() };
}

export async function runPass(context: PassContext, checkpoint: number | undefined): Promise<PassOutcome> {
  const { contentType, api, store, lane, settings, logger, abortSignal: signal } = context;
  const tracker = new CheckpointTracker(checkpoint);
  const dedupe = new RecordDeduplicator(store, contentType);
  const outcome: PassOutcome = { records: 0, blobs: 0, duplicates: 0, expired: 0, setAside: 0, checkpoint, errors: [] };
  const ceiling = () => checkpointCeiling(context.now(), api.clockSkewMs, settings.safetyLagMinutes * minute);
  let held = 0;

  const windows = planWindows({ checkpoint: checkpoint === undefined ? undefined : new Date(checkpoint), since: context.since, now: context.now(), skewMs: api.clockSkewMs, overlapMs: settings.overlapMinutes * minute });
  const blobs = listNewBlobs(api, contentType, windows, {
    abortSignal: signal, logger, telemetry: context.source,
    delivered: (contentIds) => store.deliveredBlobs(contentType, contentIds),
    onListed: (blob) => tracker.listed(blob),
    onWindowListed: (end) => tracker.windowListed(end),
    onListingFailed: (error, window: TimeWindow) => {
      const failure = toConnectorError(error);
      outcome.errors.push(failure);
      logger.error({ component: 'lister', contentType, code: failure.code, window: { start: window.start.toISOString(), end: window.end.toISOString() }, reason: failure.toLine() }, 'listing failed: the checkpoint holds at this window and the next pass lists it again');
    },
  });
  const batches = batchRecords(fetchAhead(blobs, context.fetcher, settings.fetchConcurrency, signal), {
    bounds: { maxRecords: settings.batchMaxRecords, maxBytes: settings.batchMaxBytes, maxWaitMs: settings.batchMaxWaitMs },
    dedupe,
    onReceived: (records, bytes) => context.pipeline.received(records, bytes),
    onSetAside: ({ blob, rejected }) => {
      logger.warn({ component: 'fetcher', contentType, contentId: blob.contentId, setAside: rejected.length, reasons: [...new Set(rejected.map((r) => r.reason))] }, `elements that are not audit records (not a JSON object with a string Id) set aside to ${deadLetterFileName} in the state directory; the rest of the blob is delivered`);
      context.pipeline.error({ stage: 'receiving', code: 'NOT_A_RECORD', message: `${rejected.length} element(s) of content ${blob.contentId} of ${contentType} are not audit records: set aside`, discarded: rejected.length });
    },
    onFailed: ({ blob, error }) => {
      held += 1;
      const failure = toConnectorError(error);
      outcome.errors.push(failure);
      logger.error({ component: 'fetcher', contentType, contentId: blob.contentId, code: failure.code, reason: failure.toLine() }, 'content could not be fetched after retries: the checkpoint holds before it and the next pass fetches it again');
    },
    onExpired: ({ blob }) => {
      logger.error({ component: 'fetcher', contentType, contentId: blob.contentId, contentCreated: blob.contentCreated, code: 'AF20051' }, 'content expired before it could be fetched: its records are lost at the source (recorded in state and status)');
      context.source.error({ stage: 'receiving', code: 'AF20051', message: `content ${blob.contentId} of ${contentType} expired before it was fetched`, discarded: 0 });
    },
  });

  /** Acknowledges the batch's blobs and moves the checkpoint as far as they allow; runs after every sink acked. */
  const commitOf = (batch: Batch): Omit<Commit, 'sinkPositions'> => {
    const at = context.now().toISOString();
    for (const blob of batch.blobs) tracker.acknowledged(blob.contentId);
    for (const blob of batch.expired) tracker.acknowledged(blob.contentId);
    return {
      contentType, at,
      ...advanceCheckpoint(tracker, outcome, ceiling()),
      blobs: [...batch.blobs, ...batch.expired].map((blob) => ({ contentId: blob.contentId, contentCreated: blob.contentCreated })),
      expired: batch.expired.map((blob) => ({ contentId: blob.contentId, contentCreated: blob.contentCreated, detectedAt: at })),
      recordKeys: batch.keys,
      ...(batch.setAside.length > 0 ? { setAside: batch.setAside } : {}),
      records: batch.records.length,
      duplicates: batch.duplicates,
    };
  };
  const commit = async (batch: Batch) => {
    await lane.commit(batch.records.length > 0 ? { contentType, records: batch.records } : undefined, () => commitOf(batch));
    // Every sink acknowledged and holds no reference to the records (the Sink contract): their bodies can be reused.
    for (const release of batch.releases) release();
    dedupe.committed(batch.keys);
    context.pipeline.sent(batch.records.length, batch.bytes);
    for (const counts of context.totals ? [outcome, context.totals] : [outcome]) {
      counts.records += batch.records.length;
      counts.blobs += batch.blobs.length;
      counts.duplicates += batch.duplicates;
      counts.expired += batch.expired.length;
      counts.setAside += batch.setAside.length;
    }
  };

  // One batch commits while the next one fills: at most two batches of this content type are resident.
  let committing: Promise<void> | undefined;
  try {
    for await (const batch of batches) {
      if (committing) await committing;
      committing = undefined;
      if (isEmpty(batch)) continue;
      signal?.throwIfAborted(); // a stop finishes the batch in flight, and starts no other
      committing = commit(batch);
      committing.catch(() => {}); // awaited below or before the next batch
    }
    if (committing) await committing;
    committing = undefined;
    await lane.commit(undefined, () => endOfPass(context, tracker, outcome, ceiling(), held));
  } finally {
    if (committing) await committing.catch(() => {});
    dedupe.reset();
  }
  return outcome;
}

/** The pass's last commit: its error (or none), held blobs, the checkpoint, and what can be forgotten now. */
function endOfPass(context: PassContext, tracker: CheckpointTracker, outcome: PassOutcome, ceiling: number, held: number): Omit<Commit, 'sinkPositions'> {
  const now = context.now();
  const moved = advanceCheckpoint(tracker, outcome, ceiling);
  const checkpoint = outcome.checkpoint;
  const last = outcome.errors.at(-1);
  return {
    contentType: context.contentType, at: now.toISOString(),
    ...moved,
    lastError: last ? lastErrorOf(last, now) : null,
    heldBlobs: held,
    ...(checkpoint !== undefined ? {
      // Blobs listed again are those at or after checkpoint - overlap; older contentIds can never come back.
      forgetBlobsBefore: new Date(checkpoint - context.settings.overlapMinutes * minute - minute).toISOString(),
      forgetRecordsCreatedBefore: new Date(checkpoint - context.settings.dedupeRetentionHours * hour).toISOString(),
    } : {}),
  };
}

/** Moves the pass's checkpoint as far as the acknowledgements allow; the commit carries it only when it moved. */
function advanceCheckpoint(tracker: CheckpointTracker, outcome: PassOutcome, ceiling: number): { checkpoint?: string } {
  const before = outcome.checkpoint;
  outcome.checkpoint = tracker.advance(ceiling);
  return outcome.checkpoint !== undefined && outcome.checkpoint !== before ? { checkpoint: new Date(outcome.checkpoint).toISOString() } : {};
}
