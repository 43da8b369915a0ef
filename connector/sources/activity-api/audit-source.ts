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
import type { Interval } from '../../core/history.ts';
import type { ConnectorError } from '../../core/errors.ts';
import { failureOf, lastErrorOf, type Acknowledgement, type CommitChange, type Source, type SourceContext, type SourcePass } from '../source.ts';
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
    live: (checkpoint, context) => {
      const overlapMs = context.settings.overlapMinutes * minute;
      const windows = planWindows({ checkpoint: checkpoint === undefined ? undefined : new Date(checkpoint), since: context.since, now: context.now(), skewMs: api.clockSkewMs, overlapMs });
      const pass = new AuditPass(contentType, api, fetcher, context, checkpoint, windows);
      pass.gap = historyGap(checkpoint === undefined ? context.since.getTime() : checkpoint - overlapMs, windows[0], context.now().getTime() + api.clockSkewMs);
      return pass;
    },
    sweep: (checkpoint, coveredFrom, context) => {
      const windows = sweepWindows({ coveredFrom, checkpoint, overlapMs: context.settings.overlapMinutes * minute, now: context.now(), skewMs: api.clockSkewMs });
      if (windows.length === 0) return undefined;
      context.logger.info({ component: 'sweep', contentType, from: windows[0]!.start.toISOString(), to: windows.at(-1)!.end.toISOString() }, 'sweep started');
      return new AuditPass(contentType, api, fetcher, context, checkpoint, windows, true);
    },
  };
}

/**
 * What a live pass starting at `wanted` cannot list because the API keeps 7 days: from `wanted` to a margin past
 * where its first window starts (the audit search reads it); none when `wanted` is within the 7 days (a minute's slack).
 */
function historyGap(wanted: number, first: TimeWindow | undefined, serverNow: number): Interval | undefined {
  if (first === undefined || wanted >= serverNow - retentionMs - minute) return undefined;
  return [Math.floor(wanted / 1000) * 1000, first.start.getTime() + historyOverlapMs];
}

/** How far the history reads into what the live passes list: records at the edge are delivered once all the same. */
const historyOverlapMs = hour;

/** One live pass or sweep of an audit content type: its state is the fields, its steps the methods. */
class AuditPass implements SourcePass<AuditItem> {
  readonly listedFrom: number | undefined;
  readonly errors: ConnectorError[] = [];
  /** Blobs that could not be fetched: they hold the checkpoint. */
  held = 0;
  lateBlobs = 0;
  /** What the unit needed that the API no longer lists: recorded in the unit's history with the pass's first commit. */
  gap: Interval | undefined;
  readonly #tracker: CheckpointTracker;
  readonly #throttledBefore: number;
  readonly #started = performance.now();

  private readonly contentType: ContentType;
  private readonly api: ActivityApi;
  private readonly fetcher: BlobFetcher;
  private readonly context: SourceContext;
  private readonly windows: readonly TimeWindow[];
  private readonly sweeping: boolean;

  constructor(contentType: ContentType, api: ActivityApi, fetcher: BlobFetcher, context: SourceContext, from: number | undefined, windows: readonly TimeWindow[], sweeping = false) {
    this.contentType = contentType;
    this.api = api;
    this.fetcher = fetcher;
    this.context = context;
    this.windows = windows;
    this.sweeping = sweeping;
    this.#tracker = new CheckpointTracker(from);
    this.#throttledBefore = api.rate?.throttled ?? 0;
    this.listedFrom = windows[0]?.start.getTime();
  }

  get checkpoint(): number | undefined {
    return this.#tracker.checkpoint;
  }

  async *[Symbol.asyncIterator](): AsyncIterator<AuditItem> {
    const { contentType, context } = this;
    const { logger, reporter, signal } = context;
    const priority = this.sweeping ? 'background' : 'live';
    const listing: ListingObserver = {
      listed: (blob) => {
        this.#tracker.listed(blob);
        context.observer?.listed(contentType);
      },
      windowListed: (end) => this.#tracker.windowListed(end),
      listingFailed: (error, window) => {
        const failure = failureOf(error, context);
        this.errors.push(failure);
        logger.error({ component: 'lister', contentType, code: failure.code, window: { start: window.start.toISOString(), end: window.end.toISOString() }, reason: failure.toLine() }, 'listing failed: the checkpoint holds at this window and the next pass lists it again');
      },
    };
    const blobs = listNewBlobs(this.api, contentType, this.windows, { abortSignal: signal, logger, telemetry: reporter, priority, delivered: context.delivered, observer: listing });
    for await (const outcome of fetchAhead(blobs, this.fetcher, context.settings.fetchConcurrency, signal, priority)) {
      const { blob } = outcome;
      if (outcome.kind === 'failed') {
        this.held += 1;
        const failure = failureOf(outcome.error, context);
        this.errors.push(failure);
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
  }

  acknowledge(items: readonly AuditItem[], now: Date): Acknowledgement {
    const { contentType, context, sweeping } = this;
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
    this.lateBlobs += late.length;
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
        for (const item of items) this.#tracker.acknowledged(item.blob.contentId);
        if (late.length > 0) {
          context.logger.info({ component: 'sweep', contentType, lateBlobs: late.length, maxLatenessHours: Math.round(Math.max(...late.map((l) => l.latenessMs)) / 36e5 * 10) / 10 }, 'the sweep found blobs listed after their window was: delivered now');
        }
        return {
          contentType, at,
          ...(sweeping ? {} : this.#advanceCheckpoint()),
          ...this.#takeGap(),
          // With the first commit, not only at the end of the pass: a first run killed mid-way must not lose where its
          // coverage began, or the sweeps would never look behind the checkpoint it reached.
          ...(!sweeping && this.listedFrom !== undefined ? { coveredFrom: new Date(this.listedFrom).toISOString() } : {}),
          ...(late.length > 0 ? { late: late.map(({ blob, latenessMs }) => ({ contentId: blob.contentId, latenessMs })) } : {}),
          blobs: [...blobs, ...expired].map((blob) => ({ contentId: blob.contentId, contentCreated: blob.contentCreated })),
          expired: expired.map((blob) => ({ contentId: blob.contentId, contentCreated: blob.contentCreated, detectedAt: at })),
          ...(setAside.length > 0 ? { setAside } : {}),
        };
      },
    };
  }

  async end(): Promise<Acknowledgement> {
    const now = this.context.now();
    if (this.sweeping) this.context.logger.info({ component: 'sweep', contentType: this.contentType, seconds: Math.round(performance.now() - this.#started) / 1000, lateBlobs: this.lateBlobs, errors: this.errors.length }, 'sweep ended');
    return { records: this.#passHealth(now), counts: {}, change: () => this.#lastCommit(now) };
  }

  /** The gap, with the first commit that moves the checkpoint past it (once: a later commit must not ask again for what history has read since). */
  #takeGap(): { history?: { gap: Interval } } {
    const { gap } = this;
    this.gap = undefined;
    return gap ? { history: { gap } } : {};
  }

  /** Moves the pass's checkpoint as far as the acknowledgements allow; the commit carries it only when it moved. */
  #advanceCheckpoint(): { checkpoint?: string } {
    const before = this.#tracker.checkpoint;
    const checkpoint = this.#tracker.advance(checkpointCeiling(this.context.now(), this.api.clockSkewMs, this.context.settings.safetyLagMinutes * minute));
    return checkpoint !== undefined && checkpoint !== before ? { checkpoint: new Date(checkpoint).toISOString() } : {};
  }

  /**
   * The pass's last commit, with where the tenant's request rate stands (for `status`; clients without an adaptive
   * budget have none). A live pass's: its error (or none), held blobs, the checkpoint, and what can be forgotten now.
   * A sweep's: it completed when every window was listed and every blob fetched; an error is kept.
   */
  #lastCommit(now: Date): CommitChange {
    const { api, contentType } = this;
    const last = this.errors.at(-1);
    const done = { contentType, at: now.toISOString(), ...(api.rate ? { apiRate: { ...api.rate, at: now.toISOString() } } : {}) };
    if (this.sweeping) return { ...done, ...(last ? { lastError: lastErrorOf(last, now) } : { sweptAt: now.toISOString() }) };
    const moved = this.#advanceCheckpoint();
    const { checkpoint } = this.#tracker;
    return {
      ...done, ...moved, ...this.#takeGap(), lastError: last ? lastErrorOf(last, now) : null, heldBlobs: this.held,
      ...(this.listedFrom !== undefined ? { coveredFrom: new Date(this.listedFrom).toISOString() } : {}),
      ...(checkpoint !== undefined ? {
        // Sweeps list the whole retention again: a delivered blob is remembered until the API could not list it any more.
        forgetBlobsBefore: new Date(now.getTime() + api.clockSkewMs - retentionMs - hour).toISOString(),
        forgetRecordsCreatedBefore: new Date(checkpoint - this.context.settings.dedupeRetentionHours * hour).toISOString(),
      } : {}),
    };
  }

  /** Health records for how a pass went: a subscription an administrator disabled, a tenant throttled (slowed, nothing lost). */
  #passHealth(now: Date): RawRecord[] {
    const { contentType, windows } = this;
    if (!this.context.emitHealth) return [];
    const window = { WindowStart: windows[0]?.start.toISOString() ?? '', WindowEnd: windows.at(-1)?.end.toISOString() ?? '' };
    const records: RawRecord[] = [];
    // One per content type and hour: a storm of passes ending the same way is one event downstream.
    const hourOf = now.toISOString().slice(0, 13);
    if (this.errors.some((error) => error.code === 'AF20023')) records.push(healthRecord('SubscriptionDisabled', contentType, now, { Code: 'AF20023', ...window }, hourOf));
    const rate = this.api.rate;
    const throttled = (rate?.throttled ?? 0) - this.#throttledBefore;
    if (throttled > 0) {
      records.push(healthRecord('Throttled', contentType, now, {
        Code: 'AF429', ThrottledAnswers: throttled, ...(rate ? { RequestsPerMinute: rate.perMinute, ...(rate.learnedPerMinute !== undefined ? { LearnedPerMinute: rate.learnedPerMinute } : {}) } : {}), ...window,
      }, hourOf));
    }
    return records;
  }
}
