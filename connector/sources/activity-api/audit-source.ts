/**
 * An audit content type of the Management Activity API as a Source. A live pass plans windows from the
 * checkpoint (less the overlap), lists the blobs not delivered before and fetches them ahead, in order, with a
 * bound. The checkpoint moves only past blobs whose every record every sink acknowledged; a blob that could not
 * be fetched, or a window that could not be listed, holds it.
 *
 * A sweep is the same pass over the older part of the covered range (from where coverage begins, within the
 * API's 7 days, up to where live passes list again), at background priority: it moves no checkpoint; what it
 * delivers was listed late, and is counted with its lateness; when every window was listed and every blob
 * fetched, it records that the sweep completed.
 */
import type { ContentType } from '../../../contract/content-types.ts';
import type { RawRecord } from '../../core/records.ts';
import type { SetAsideRecord } from '../../core/commit.ts';
import { toConnectorError, type ConnectorError } from '../../core/errors.ts';
import { lastErrorOf, type CommitChange, type Source, type SourceContext, type SourcePass } from '../source.ts';
import { retentionMs, type ActivityApi, type ContentBlob, type TimeWindow } from './activity-api.ts';
import type { BlobFetcher, FetchOutcome } from './blob-fetcher.ts';
import { CheckpointTracker } from './checkpoint-tracker.ts';
import { listNewBlobs, type ListingObserver } from './content-lister.ts';
import { fetchAhead } from './fetch-ahead.ts';
import { healthRecord } from './health-records.ts';
import { checkpointCeiling, planWindows, sweepWindows } from './windows.ts';

const minute = 60_000;
const hour = 60 * minute;

/** A fetched blob, or one that expired before it could be fetched (no records: it is recorded as lost). */
type AuditItem = Extract<FetchOutcome, { kind: 'records' }> | (Extract<FetchOutcome, { kind: 'expired' }> & { readonly records: readonly RawRecord[]; readonly bytes: number });

/** An audit content type of the tenant `api` reads, its blobs fetched by `fetcher` (whose slots every content type shares). */
export function auditSource(contentType: ContentType, api: ActivityApi, fetcher: BlobFetcher): Source {
  return {
    contentType,
    live: (checkpoint, context) => auditPass(contentType, api, fetcher, context, checkpoint, planWindows({
      checkpoint: checkpoint === undefined ? undefined : new Date(checkpoint), since: context.since, now: context.now(), skewMs: api.clockSkewMs, overlapMs: context.settings.overlapMinutes * minute,
    })),
    sweep: (checkpoint, coveredFrom, context) => {
      const windows = sweepWindows({ coveredFrom, checkpoint, overlapMs: context.settings.overlapMinutes * minute, now: context.now(), skewMs: api.clockSkewMs });
      if (windows.length === 0) return undefined;
      context.logger.info({ component: 'sweep', contentType, from: windows[0]!.start.toISOString(), to: windows.at(-1)!.end.toISOString() }, 'sweep started');
      return auditPass(contentType, api, fetcher, context, checkpoint, windows, true);
    },
  };
}

function auditPass(contentType: ContentType, api: ActivityApi, fetcher: BlobFetcher, context: SourceContext, from: number | undefined, windows: readonly TimeWindow[], sweeping = false): SourcePass<AuditItem> {
  const { settings, logger, reporter, signal } = context;
  const tracker = new CheckpointTracker(from);
  const throttledBefore = api.rate?.throttled ?? 0;
  const started = performance.now();
  const listedFrom = windows[0]?.start.getTime();
  const errors: ConnectorError[] = [];
  /** Blobs that could not be fetched: they hold the checkpoint. */
  let held = 0;
  let lateBlobs = 0;

  const listing: ListingObserver = {
    listed: (blob) => {
      tracker.listed(blob);
      context.observer?.listed(contentType);
    },
    windowListed: (end) => tracker.windowListed(end),
    listingFailed: (error, window) => {
      const failure = toConnectorError(error);
      errors.push(failure);
      logger.error({ component: 'lister', contentType, code: failure.code, window: { start: window.start.toISOString(), end: window.end.toISOString() }, reason: failure.toLine() }, 'listing failed: the checkpoint holds at this window and the next pass lists it again');
    },
  };
  /** Moves the pass's checkpoint as far as the acknowledgements allow; the commit carries it only when it moved. */
  const advanceCheckpoint = (): { checkpoint?: string } => {
    const before = tracker.checkpoint;
    const checkpoint = tracker.advance(checkpointCeiling(context.now(), api.clockSkewMs, settings.safetyLagMinutes * minute));
    return checkpoint !== undefined && checkpoint !== before ? { checkpoint: new Date(checkpoint).toISOString() } : {};
  };
  /**
   * The pass's last commit, with where the tenant's request rate stands (for `status`; clients without an adaptive
   * budget have none). A live pass's: its error (or none), held blobs, the checkpoint, and what can be forgotten now.
   * A sweep's: it completed when every window was listed and every blob fetched; an error is kept.
   */
  const lastCommit = (now: Date): CommitChange => {
    const last = errors.at(-1);
    const done = { contentType, at: now.toISOString(), ...(api.rate ? { apiRate: { ...api.rate, at: now.toISOString() } } : {}) };
    if (sweeping) return { ...done, ...(last ? { lastError: lastErrorOf(last, now) } : { sweptAt: now.toISOString() }) };
    const moved = advanceCheckpoint();
    const { checkpoint } = tracker;
    return {
      ...done, ...moved, lastError: last ? lastErrorOf(last, now) : null, heldBlobs: held,
      ...(listedFrom !== undefined ? { coveredFrom: new Date(listedFrom).toISOString() } : {}),
      ...(checkpoint !== undefined ? {
        // Sweeps list the whole retention again: a delivered blob is remembered until the API could not list it any more.
        forgetBlobsBefore: new Date(now.getTime() + api.clockSkewMs - retentionMs - hour).toISOString(),
        forgetRecordsCreatedBefore: new Date(checkpoint - settings.dedupeRetentionHours * hour).toISOString(),
      } : {}),
    };
  };
  /** Health records for how a pass went: a subscription an administrator disabled, a tenant throttled (slowed, nothing lost). */
  const passHealth = (now: Date): RawRecord[] => {
    if (!context.emitHealth) return [];
    const window = { WindowStart: windows[0]?.start.toISOString() ?? '', WindowEnd: windows.at(-1)?.end.toISOString() ?? '' };
    const records: RawRecord[] = [];
    // One per content type and hour: a storm of passes ending the same way is one event downstream.
    const hourOf = now.toISOString().slice(0, 13);
    if (errors.some((error) => error.code === 'AF20023')) records.push(healthRecord('SubscriptionDisabled', contentType, now, { Code: 'AF20023', ...window }, hourOf));
    const rate = api.rate;
    const throttled = (rate?.throttled ?? 0) - throttledBefore;
    if (throttled > 0) {
      records.push(healthRecord('Throttled', contentType, now, {
        Code: 'AF429', ThrottledAnswers: throttled, ...(rate ? { RequestsPerMinute: rate.perMinute, ...(rate.learnedPerMinute !== undefined ? { LearnedPerMinute: rate.learnedPerMinute } : {}) } : {}), ...window,
      }, hourOf));
    }
    return records;
  };

  return {
    listedFrom, errors,
    get checkpoint() {
      return tracker.checkpoint;
    },
    async *[Symbol.asyncIterator]() {
      const priority = sweeping ? 'background' : 'live';
      const blobs = listNewBlobs(api, contentType, windows, { abortSignal: signal, logger, telemetry: reporter, priority, delivered: context.delivered, observer: listing });
      for await (const outcome of fetchAhead(blobs, fetcher, settings.fetchConcurrency, signal, priority)) {
        const { blob } = outcome;
        if (outcome.kind === 'failed') {
          held += 1;
          const failure = toConnectorError(outcome.error);
          errors.push(failure);
          logger.error({ component: 'fetcher', contentType, contentId: blob.contentId, code: failure.code, reason: failure.toLine() }, 'content could not be fetched after retries: the checkpoint holds before it and the next pass fetches it again');
        } else if (outcome.kind === 'expired') {
          logger.error({ component: 'fetcher', contentType, contentId: blob.contentId, contentCreated: blob.contentCreated, code: 'AF20051' }, 'content expired before it could be fetched: its records are lost at the source (recorded in state and status)');
          reporter.error({ stage: 'receiving', code: 'AF20051', message: `content ${blob.contentId} of ${contentType} expired before it was fetched`, discarded: 0 });
          yield { ...outcome, records: [], bytes: 0 };
        } else {
          context.observer?.fetched(contentType);
          const { rejected } = outcome;
          if (rejected.length > 0) {
            logger.warn({ component: 'fetcher', contentType, contentId: blob.contentId, setAside: rejected.length, reasons: [...new Set(rejected.map((r) => r.reason))] }, `elements that are not audit records (not a JSON object with a string Id) set aside to ${context.deadLetters}; the rest of the blob is delivered`);
            reporter.error({ stage: 'receiving', code: 'NOT_A_RECORD', message: `${rejected.length} element(s) of content ${blob.contentId} of ${contentType} are not audit records: set aside`, discarded: rejected.length });
          }
          yield outcome;
        }
      }
    },
    acknowledge(items, now) {
      const blobs: ContentBlob[] = [];
      const expired: ContentBlob[] = [];
      const setAside: SetAsideRecord[] = [];
      for (const item of items) {
        if (item.kind === 'expired') {
          expired.push(item.blob);
          continue;
        }
        blobs.push(item.blob);
        for (const element of item.rejected) setAside.push({ contentId: item.blob.contentId, ...element });
      }
      // Found by a sweep: listed after its window had been listed. How late: now (its discovery) less its contentCreated.
      const late = sweeping ? blobs.map((blob) => ({ blob, latenessMs: Math.max(0, now.getTime() - Date.parse(blob.contentCreated)) })) : [];
      lateBlobs += late.length;
      const reached = sweeping ? undefined : Math.max(...blobs.map((blob) => Date.parse(blob.contentCreated)).filter(Number.isFinite));
      return {
        records: context.emitHealth ? [
          ...expired.map((blob) => healthRecord('ContentExpired', contentType, now, { ContentId: blob.contentId, ContentCreated: blob.contentCreated, ContentExpiration: blob.contentExpiration }, blob.contentId)),
          ...late.map(({ blob, latenessMs }) => healthRecord('LateContent', contentType, now, { ContentId: blob.contentId, ContentCreated: blob.contentCreated, LatenessSeconds: Math.round(latenessMs / 1000) }, blob.contentId)),
        ] : [],
        counts: { blobs: blobs.length, expired: expired.length, setAside: setAside.length, late: late.length },
        ...(reached !== undefined && Number.isFinite(reached) ? { reached } : {}),
        change: () => {
          const at = context.now().toISOString();
          for (const item of items) tracker.acknowledged(item.blob.contentId);
          if (late.length > 0) {
            logger.info({ component: 'sweep', contentType, lateBlobs: late.length, maxLatenessHours: Math.round(Math.max(...late.map((l) => l.latenessMs)) / 36e5 * 10) / 10 }, 'the sweep found blobs listed after their window was: delivered now');
          }
          return {
            contentType, at,
            ...(sweeping ? {} : advanceCheckpoint()),
            // With the first commit, not only at the end of the pass: a first run killed mid-way must not lose where its
            // coverage began, or the sweeps would never look behind the checkpoint it reached.
            ...(!sweeping && listedFrom !== undefined ? { coveredFrom: new Date(listedFrom).toISOString() } : {}),
            ...(late.length > 0 ? { late: late.map(({ blob, latenessMs }) => ({ contentId: blob.contentId, latenessMs })) } : {}),
            blobs: [...blobs, ...expired].map((blob) => ({ contentId: blob.contentId, contentCreated: blob.contentCreated })),
            expired: expired.map((blob) => ({ contentId: blob.contentId, contentCreated: blob.contentCreated, detectedAt: at })),
            ...(setAside.length > 0 ? { setAside } : {}),
          };
        },
      };
    },
    async end() {
      const now = context.now();
      if (sweeping) logger.info({ component: 'sweep', contentType, seconds: Math.round(performance.now() - started) / 1000, lateBlobs, errors: errors.length }, 'sweep ended');
      return { records: passHealth(now), counts: {}, change: () => lastCommit(now) };
    },
  };
}
