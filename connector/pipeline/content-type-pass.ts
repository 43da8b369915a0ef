/**
 * One pass of one content type, as stages with one job each: plan windows from the checkpoint (less the
 * overlap) → list the blobs not delivered before → fetch ahead, in order, with a bound → batch (dropping
 * repeated records) → commit through the lane. The checkpoint moves only past blobs whose every record every
 * sink acknowledged; a blob that could not be fetched, or a window that could not be listed, holds it.
 *
 * A sweep is the same pass over the older part of the covered range (from where coverage begins, within the
 * API's 7 days, up to where live passes list again), at background priority: it moves no checkpoint; what it
 * delivers was listed late, and is counted with its lateness; when every window was listed and every blob
 * fetched, it records that the sweep completed.
 */
import { redactSecrets } from '../observe/secret-values.ts';
import { retentionMs, type ActivityApi, type ContentBlob, type TimeWindow } from '../sources/activity-api/activity-api.ts';
import type { ContentType } from '../../contract/content-types.ts';
import type { BlobFetcher } from '../sources/activity-api/blob-fetcher.ts';
import { listNewBlobs } from '../sources/activity-api/content-lister.ts';
import { fetchAhead } from '../sources/activity-api/fetch-ahead.ts';
import { checkpointCeiling, planWindows } from '../sources/activity-api/windows.ts';
import { ConnectorError } from '../core/errors.ts';
import type { RawRecord } from '../core/records.ts';
import { deadLetterFileName } from '../state/sqlite/dead-letter.ts';
import type { Commit, LastError } from '../core/commit.ts';
import { batchRecords, isEmpty, type Batch } from './batcher.ts';
import { CheckpointTracker } from '../sources/activity-api/checkpoint-tracker.ts';
import { healthRecord } from './health-records.ts';
import type { UnitPassContext } from './unit-pass-context.ts';
import { RecordDeduplicator } from './record-deduplicator.ts';

const minute = 60_000;
const hour = 60 * minute;

export interface PassContext extends UnitPassContext {
  readonly contentType: ContentType;
  readonly api: ActivityApi;
  readonly fetcher: BlobFetcher;
  readonly totals?: { records: number; blobs: number; duplicates: number; expired: number; setAside: number; late: number };
  /** Counts blobs listed and fetched (metrics). */
  readonly observer?: { listed(contentType: ContentType): void; fetched(contentType: ContentType): void } | undefined;
  /** Write health records (health-records.ts) into the sinks with the batches. */
  readonly emitHealth?: boolean | undefined;
  /** A sweep of these windows (collect/windows.ts sweepWindows) instead of a live pass from the checkpoint. */
  readonly sweep?: readonly TimeWindow[];
}

/** A blob a sweep delivered, and how late it was listed. */
interface LateBlob {
  readonly blob: ContentBlob;
  readonly latenessMs: number;
}

export interface PassOutcome {
  records: number;
  blobs: number;
  duplicates: number;
  expired: number;
  /** Elements that were not audit records, set aside to the dead-letter file. */
  setAside: number;
  /** Blobs a sweep delivered (listed after their window was). */
  late: number;
  /** Where this pass's first window began (ms): where the state's coverage begins on a first run. */
  listedFrom: number | undefined;
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
  const sweeping = context.sweep !== undefined;
  const priority = sweeping ? 'background' : 'live';
  const tracker = new CheckpointTracker(checkpoint);
  const dedupe = new RecordDeduplicator(store, contentType, context.pending);
  const ceiling = () => checkpointCeiling(context.now(), api.clockSkewMs, settings.safetyLagMinutes * minute);
  const throttledBefore = api.rate?.throttled ?? 0;
  let held = 0;

  const windows = context.sweep
    ?? planWindows({ checkpoint: checkpoint === undefined ? undefined : new Date(checkpoint), since: context.since, now: context.now(), skewMs: api.clockSkewMs, overlapMs: settings.overlapMinutes * minute });
  const outcome: PassOutcome = { records: 0, blobs: 0, duplicates: 0, expired: 0, setAside: 0, late: 0, listedFrom: windows[0]?.start.getTime(), checkpoint, errors: [] };
  const blobs = listNewBlobs(api, contentType, windows, {
    abortSignal: signal, logger, telemetry: context.source, priority,
    delivered: (contentIds) => store.deliveredBlobs(contentType, contentIds),
    onListed: (blob) => {
      tracker.listed(blob);
      context.observer?.listed(contentType);
    },
    onWindowListed: (end) => tracker.windowListed(end),
    onListingFailed: (error, window: TimeWindow) => {
      const failure = toConnectorError(error);
      outcome.errors.push(failure);
      logger.error({ component: 'lister', contentType, code: failure.code, window: { start: window.start.toISOString(), end: window.end.toISOString() }, reason: failure.toLine() }, 'listing failed: the checkpoint holds at this window and the next pass lists it again');
    },
  });
  const batches = batchRecords(fetchAhead(blobs, context.fetcher, settings.fetchConcurrency, signal, priority), {
    bounds: { maxRecords: settings.batchMaxRecords, maxBytes: settings.batchMaxBytes, maxWaitMs: settings.batchMaxWaitMs },
    dedupe,
    onReceived: (records, bytes) => {
      context.pipeline.received(records, bytes);
      context.observer?.fetched(contentType);
    },
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
  const commitOf = (batch: Batch, late: readonly LateBlob[]): Omit<Commit, 'sinkPositions'> => {
    const at = context.now().toISOString();
    for (const blob of batch.blobs) tracker.acknowledged(blob.contentId);
    for (const blob of batch.expired) tracker.acknowledged(blob.contentId);
    if (late.length > 0) {
      logger.info({ component: 'sweep', contentType, lateBlobs: late.length, maxLatenessHours: Math.round(Math.max(...late.map((l) => l.latenessMs)) / 36e5 * 10) / 10 }, 'the sweep found blobs listed after their window was: delivered now');
    }
    return {
      contentType, at,
      ...(sweeping ? {} : advanceCheckpoint(tracker, outcome, ceiling())),
      // With the first commit, not only at the end of the pass: a first run killed mid-way must not lose where its
      // coverage began, or the sweeps would never look behind the checkpoint it reached.
      ...(!sweeping && outcome.listedFrom !== undefined ? { coveredFrom: new Date(outcome.listedFrom).toISOString() } : {}),
      ...(late.length > 0 ? { late: late.map(({ blob, latenessMs }) => ({ contentId: blob.contentId, latenessMs })) } : {}),
      blobs: [...batch.blobs, ...batch.expired].map((blob) => ({ contentId: blob.contentId, contentCreated: blob.contentCreated })),
      expired: batch.expired.map((blob) => ({ contentId: blob.contentId, contentCreated: blob.contentCreated, detectedAt: at })),
      recordKeys: batch.keys,
      ...(batch.setAside.length > 0 ? { setAside: batch.setAside } : {}),
      records: batch.records.length,
      duplicates: batch.duplicates,
    };
  };
  /** The health records of a batch: its expired blobs, and (a sweep's) the blobs found late. */
  const healthOf = (batch: Batch, late: readonly LateBlob[], now: Date) => {
    if (!context.emitHealth) return [];
    return [
      ...batch.expired.map((blob) => healthRecord('ContentExpired', contentType, now, { ContentId: blob.contentId, ContentCreated: blob.contentCreated, ContentExpiration: blob.contentExpiration }, blob.contentId)),
      ...late.map(({ blob, latenessMs }) => healthRecord('LateContent', contentType, now, { ContentId: blob.contentId, ContentCreated: blob.contentCreated, LatenessSeconds: Math.round(latenessMs / 1000) }, blob.contentId)),
    ];
  };
  const commit = async (batch: Batch) => {
    const now = context.now();
    // Found by a sweep: listed after its window had been listed. How late: now (its discovery) less its contentCreated.
    const late: LateBlob[] = sweeping ? batch.blobs.map((blob) => ({ blob, latenessMs: Math.max(0, now.getTime() - Date.parse(blob.contentCreated)) })) : [];
    const health = healthOf(batch, late, now);
    const records = health.length > 0 ? [...batch.records, ...health] : batch.records;
    await lane.commit(records.length > 0 ? { contentType, records } : undefined, () => commitOf(batch, late), store);
    // Every sink acknowledged and holds no reference to the records (the Sink contract): their bodies can be reused.
    for (const release of batch.releases) release();
    dedupe.committed(batch.keys);
    context.pipeline.sent(batch.records.length, batch.bytes);
    const reached = sweeping ? undefined : Math.max(...batch.blobs.map((blob) => Date.parse(blob.contentCreated)).filter(Number.isFinite));
    context.onProgress?.(contentType, { records: batch.records.length, checkpoint: outcome.checkpoint, coveredFrom: outcome.listedFrom, ...(reached !== undefined && Number.isFinite(reached) ? { reached } : {}) });
    for (const counts of context.totals ? [outcome, context.totals] : [outcome]) {
      counts.records += batch.records.length;
      counts.blobs += batch.blobs.length;
      counts.duplicates += batch.duplicates;
      counts.expired += batch.expired.length;
      counts.setAside += batch.setAside.length;
      if (sweeping) counts.late += batch.blobs.length;
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
    const health = passHealth(context, outcome, windows, (api.rate?.throttled ?? 0) - throttledBefore);
    await lane.commit(health.length > 0 ? { contentType, records: health } : undefined, () => (sweeping ? endOfSweep(context, outcome) : endOfPass(context, tracker, outcome, ceiling(), held)), store);
  } finally {
    if (committing) await committing.catch(() => {});
    dedupe.reset();
  }
  return outcome;
}

/** Health records for how a pass went: a subscription an administrator disabled, a tenant throttled (slowed, nothing lost). */
function passHealth(context: PassContext, outcome: PassOutcome, windows: readonly TimeWindow[], throttled: number): RawRecord[] {
  if (!context.emitHealth) return [];
  const now = context.now();
  const window = { WindowStart: windows[0]?.start.toISOString() ?? '', WindowEnd: windows.at(-1)?.end.toISOString() ?? '' };
  const records: RawRecord[] = [];
  // One per content type and hour: a storm of passes ending the same way is one event downstream.
  const hour = now.toISOString().slice(0, 13);
  if (outcome.errors.some((error) => error.code === 'AF20023')) records.push(healthRecord('SubscriptionDisabled', context.contentType, now, { Code: 'AF20023', ...window }, hour));
  const rate = context.api.rate;
  if (throttled > 0) {
    records.push(healthRecord('Throttled', context.contentType, now, {
      Code: 'AF429', ThrottledAnswers: throttled, ...(rate ? { RequestsPerMinute: rate.perMinute, ...(rate.learnedPerMinute !== undefined ? { LearnedPerMinute: rate.learnedPerMinute } : {}) } : {}), ...window,
    }, hour));
  }
  return records;
}

/** The pass's last commit: its error (or none), held blobs, the checkpoint, and what can be forgotten now. */
function endOfPass(context: PassContext, tracker: CheckpointTracker, outcome: PassOutcome, ceiling: number, held: number): Omit<Commit, 'sinkPositions'> {
  const now = context.now();
  const moved = advanceCheckpoint(tracker, outcome, ceiling);
  const checkpoint = outcome.checkpoint;
  const last = outcome.errors.at(-1);
  return {
    contentType: context.contentType, at: now.toISOString(),
    ...rateSample(context.api, now),
    ...moved,
    lastError: last ? lastErrorOf(last, now) : null,
    heldBlobs: held,
    ...(outcome.listedFrom !== undefined ? { coveredFrom: new Date(outcome.listedFrom).toISOString() } : {}),
    ...(checkpoint !== undefined ? {
      // Sweeps list the whole retention again: a delivered blob is remembered until the API could not list it any more.
      forgetBlobsBefore: new Date(now.getTime() + context.api.clockSkewMs - retentionMs - hour).toISOString(),
      forgetRecordsCreatedBefore: new Date(checkpoint - context.settings.dedupeRetentionHours * hour).toISOString(),
    } : {}),
  };
}

/** A sweep's last commit: it completed when every window was listed and every blob fetched; an error is kept. */
function endOfSweep(context: PassContext, outcome: PassOutcome): Omit<Commit, 'sinkPositions'> {
  const now = context.now();
  const last = outcome.errors.at(-1);
  return {
    contentType: context.contentType, at: now.toISOString(),
    ...rateSample(context.api, now),
    ...(last ? { lastError: lastErrorOf(last, now) } : { sweptAt: now.toISOString() }),
  };
}

/** Where the tenant's request rate stands, for `status` (clients without an adaptive budget have none). */
function rateSample(api: ActivityApi, now: Date): Pick<Commit, 'apiRate'> {
  const rate = api.rate;
  return rate ? { apiRate: { ...rate, at: now.toISOString() } } : {};
}

/** Moves the pass's checkpoint as far as the acknowledgements allow; the commit carries it only when it moved. */
function advanceCheckpoint(tracker: CheckpointTracker, outcome: PassOutcome, ceiling: number): { checkpoint?: string } {
  const before = outcome.checkpoint;
  outcome.checkpoint = tracker.advance(ceiling);
  return outcome.checkpoint !== undefined && outcome.checkpoint !== before ? { checkpoint: new Date(outcome.checkpoint).toISOString() } : {};
}
