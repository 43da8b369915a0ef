/**
 * One content type's pass: plan windows from its checkpoint (less the overlap), list them page by page, fetch
 * the blobs not yet delivered with bounded concurrency, drop records already delivered, gather them into
 * bounded batches, and commit each batch through the lane (every sink acknowledges, then the state moves).
 * Memory holds at most one listing page, `fetchAhead` blobs and one batch, whatever the backlog.
 */
import type { ActivityApi, ContentBlob } from '../api/activity-api.ts';
import type { ContentType } from '../api/content-types.ts';
import { BlobFetcher, type FetchOutcome } from '../collect/blob-fetcher.ts';
import { listWindow } from '../collect/content-lister.ts';
import { checkpointCeiling, planWindows } from '../collect/windows.ts';
import { ConnectorError } from '../errors.ts';
import type { AuditRecord } from '../sinks/sink.ts';
import type { Logger } from '../status/log.ts';
import type { ComponentReporter } from '../status/telemetry.ts';
import type { ContentTypeState, LastError } from '../state/state.ts';
import { CheckpointTracker } from './checkpoint-tracker.ts';
import type { CommitLane } from './commit-lane.ts';
import { Deduplicator } from './deduplicator.ts';

export interface CollectorSettings {
  readonly since: Date;
  readonly now: () => Date;
  readonly overlapMs: number;
  readonly safetyLagMs: number;
  readonly fetchAhead: number;
  readonly batchMaxRecords: number;
  readonly batchMaxBytes: number;
  readonly batchMaxWaitMs: number;
  /** Record Ids are remembered for blobs this much older than the re-listed horizon, and at most maxIds of them. */
  readonly dedupeHorizonMs: number;
  readonly dedupeMaxIds: number;
  readonly abortSignal?: AbortSignal | undefined;
}

export interface PassOutcome {
  records: number;
  blobs: number;
  duplicates: number;
  expired: number;
  /** Errors that ended or held back this pass (the checkpoint holds; the next pass retries). */
  errors: ConnectorError[];
}

const maxExpiredKept = 50;

interface OpenBatch {
  records: AuditRecord[];
  bytes: number;
  ids: Set<string>;
  /** Blobs whose last record is in this batch (or that had none left): acknowledged when it commits. */
  blobs: ContentBlob[];
  expired: ContentBlob[];
  duplicates: number;
  openedAt: number;
}

function toConnectorError(error: unknown): ConnectorError {
  if (error instanceof ConnectorError) return error;
  return new ConnectorError('ERROR', String((error as Error)?.message ?? error), { cause: error });
}

export class ContentTypeCollector {
  readonly contentType: ContentType;
  readonly state: ContentTypeState;
  readonly #api: ActivityApi;
  readonly #fetcher: BlobFetcher;
  readonly #lane: CommitLane;
  readonly #settings: CollectorSettings;
  readonly #logger: Logger;
  readonly #source: ComponentReporter;
  readonly #pipeline: ComponentReporter;
  readonly #dedupe: Deduplicator;

  constructor(contentType: ContentType, state: ContentTypeState, parts: { api: ActivityApi; fetcher: BlobFetcher; lane: CommitLane; logger: Logger; source: ComponentReporter; pipeline: ComponentReporter }, settings: CollectorSettings) {
    this.contentType = contentType;
    this.state = state;
    this.#api = parts.api;
    this.#fetcher = parts.fetcher;
    this.#lane = parts.lane;
    this.#logger = parts.logger;
    this.#source = parts.source;
    this.#pipeline = parts.pipeline;
    this.#settings = settings;
    this.#dedupe = new Deduplicator(state.recentIds, { maxIds: settings.dedupeMaxIds });
  }

  async pass(): Promise<PassOutcome> {
    const settings = this.#settings;
    const signal = settings.abortSignal;
    const outcome: PassOutcome = { records: 0, blobs: 0, duplicates: 0, expired: 0, errors: [] };
    const checkpoint = this.state.checkpoint === undefined ? undefined : Date.parse(this.state.checkpoint);
    const tracker = new CheckpointTracker(checkpoint);
    const windows = planWindows({ checkpoint: checkpoint === undefined ? undefined : new Date(checkpoint), since: settings.since, now: settings.now(), skewMs: this.#api.clockSkewMs, overlapMs: settings.overlapMs });
    const queue: Array<{ promise: Promise<FetchOutcome>; settled: boolean }> = [];
    let batch = this.#newBatch();
    let heldBlobs = 0;

    const flush = async (force: boolean) => {
      signal?.throwIfAborted(); // a stop finishes the batch in flight, and starts no other
      const moved = tracker.advance(this.#ceiling()) !== checkpointOf(this.state);
      if (!force && batch.records.length === 0 && batch.blobs.length === 0 && batch.expired.length === 0 && !moved) return;
      const done = batch;
      batch = this.#newBatch();
      const sinkBatch = done.records.length > 0 ? { contentType: this.contentType, records: done.records } : undefined;
      await this.#lane.commit(this.state, sinkBatch, () => this.#apply(done, tracker, outcome));
      this.#pipeline.sent(done.records.length, done.bytes);
    };

    const take = async () => {
      signal?.throwIfAborted();
      const head = queue.shift()!;
      if (!head.settled && batch.records.length > 0) {
        const waited = Date.now() - batch.openedAt;
        if (waited >= settings.batchMaxWaitMs || !(await settledWithin(head, settings.batchMaxWaitMs - waited))) await flush(false);
      }
      const result = await head.promise;
      if (result.kind === 'records') {
        await this.#add(result.blob, result.records, result.bytes, () => batch, flush);
      } else if (result.kind === 'expired') {
        this.#logger.error({ component: 'fetcher', contentType: this.contentType, contentId: result.blob.contentId, contentCreated: result.blob.contentCreated, code: 'AF20051' }, 'content expired before it could be fetched: its records are lost at the source (recorded in state and status)');
        this.#source.error({ stage: 'receiving', code: 'AF20051', message: `content ${result.blob.contentId} of ${this.contentType} expired before it was fetched`, discarded: 0 });
        batch.expired.push(result.blob);
      } else {
        heldBlobs += 1;
        const error = toConnectorError(result.error);
        outcome.errors.push(error);
        this.#logger.error({ component: 'fetcher', contentType: this.contentType, contentId: result.blob.contentId, code: error.code, reason: error.toLine() }, 'content could not be fetched after retries: the checkpoint holds before it and the next pass fetches it again');
      }
      if (batch.records.length >= settings.batchMaxRecords || batch.bytes >= settings.batchMaxBytes) await flush(false);
    };

    try {
      for (const window of windows) {
        try {
          for await (const page of listWindow(this.#api, this.contentType, window, { abortSignal: signal, logger: this.#logger, telemetry: this.#source })) {
            for (const blob of page) {
              if (this.state.delivered[blob.contentId] !== undefined) continue;
              tracker.listed(blob);
              const entry = { promise: this.#fetcher.fetch(blob, { abortSignal: signal }), settled: false };
              entry.promise.then(() => { entry.settled = true; }, () => { entry.settled = true; });
              queue.push(entry);
              while (queue.length >= settings.fetchAhead) await take();
            }
          }
        } catch (error) {
          if (signal?.aborted) throw error;
          const failure = toConnectorError(error);
          outcome.errors.push(failure);
          this.#logger.error({ component: 'lister', contentType: this.contentType, code: failure.code, window: { start: window.start.toISOString(), end: window.end.toISOString() }, reason: failure.toLine() }, 'listing failed: the checkpoint holds at this window and the next pass lists it again');
          break;
        }
        tracker.windowListed(window.end);
        if (batch.records.length === 0 && queue.length === 0) await flush(false);
      }
      while (queue.length > 0) await take();
      this.state.heldBlobs = heldBlobs;
      this.state.lastError = outcome.errors.length > 0 ? lastErrorOf(outcome.errors.at(-1)!, settings.now()) : undefined;
      await flush(true);
    } finally {
      // Fetches abandoned by a stop or a failure: nobody awaits them any more.
      for (const entry of queue) entry.promise.catch(() => {});
    }
    return outcome;
  }

  /** Records a failure outside a pass (sink refusing for good, state write) so that status shows it. */
  recordError(error: unknown): void {
    this.state.lastError = lastErrorOf(toConnectorError(error), this.#settings.now());
  }

  #ceiling(): number {
    return checkpointCeiling(this.#settings.now(), this.#api.clockSkewMs, this.#settings.safetyLagMs);
  }

  #newBatch(): OpenBatch {
    return { records: [], bytes: 0, ids: new Set(), blobs: [], expired: [], duplicates: 0, openedAt: Date.now() };
  }

  async #add(blob: ContentBlob, records: readonly AuditRecord[], bytes: number, current: () => OpenBatch, flush: (force: boolean) => Promise<void>): Promise<void> {
    this.#pipeline.received(records.length, bytes);
    const perRecord = records.length > 0 ? bytes / records.length : 0;
    for (const record of records) {
      let batch = current();
      if (batch.records.length >= this.#settings.batchMaxRecords || batch.bytes >= this.#settings.batchMaxBytes) {
        await flush(false);
        batch = current();
      }
      const id = typeof record.Id === 'string' ? record.Id : undefined;
      if (id !== undefined && (this.#dedupe.has(id) || batch.ids.has(id))) {
        batch.duplicates += 1;
        continue;
      }
      if (id !== undefined) batch.ids.add(id);
      if (batch.records.length === 0) batch.openedAt = Date.now();
      batch.records.push(record);
      batch.bytes += perRecord;
    }
    current().blobs.push(blob);
  }

  /** Runs inside the lane once every sink acknowledged the batch: moves the state forward. */
  #apply(batch: OpenBatch, tracker: CheckpointTracker, outcome: PassOutcome): void {
    const state = this.state;
    const now = this.#settings.now().toISOString();
    for (const blob of batch.blobs) {
      state.delivered[blob.contentId] = blob.contentCreated;
      tracker.acknowledged(blob.contentId);
      if (state.lastContentSeen === undefined || blob.contentCreated > state.lastContentSeen) state.lastContentSeen = blob.contentCreated;
    }
    const newest = batch.blobs.at(-1);
    const idTime = newest ? Date.parse(newest.contentCreated) : this.#settings.now().getTime();
    for (const id of batch.ids) this.#dedupe.add(id, idTime);
    for (const blob of batch.expired) {
      state.delivered[blob.contentId] = blob.contentCreated;
      tracker.acknowledged(blob.contentId);
      state.expiredCount += 1;
      state.expired.push({ contentId: blob.contentId, contentCreated: blob.contentCreated, detectedAt: now });
    }
    if (state.expired.length > maxExpiredKept) state.expired.splice(0, state.expired.length - maxExpiredKept);
    state.recordsDelivered += batch.records.length;
    state.blobsDelivered += batch.blobs.length;
    state.duplicatesDropped += batch.duplicates;
    if (batch.records.length > 0) state.lastDeliveryAt = now;
    outcome.records += batch.records.length;
    outcome.blobs += batch.blobs.length;
    outcome.duplicates += batch.duplicates;
    outcome.expired += batch.expired.length;

    const checkpoint = tracker.advance(this.#ceiling());
    if (checkpoint !== undefined) {
      state.checkpoint = new Date(checkpoint).toISOString();
      // Blobs listed again are those at or after checkpoint - overlap; older contentIds can never come back.
      const relistFrom = checkpoint - this.#settings.overlapMs - 60_000;
      for (const [contentId, created] of Object.entries(state.delivered)) if (Date.parse(created) < relistFrom) delete state.delivered[contentId];
      this.#dedupe.prune(relistFrom - this.#settings.dedupeHorizonMs);
    }
    state.recentIds = this.#dedupe.entries();
    state.updatedAt = now;
  }
}

function checkpointOf(state: ContentTypeState): number | undefined {
  return state.checkpoint === undefined ? undefined : Date.parse(state.checkpoint);
}

function lastErrorOf(error: ConnectorError, now: Date): LastError {
  return { code: error.code, message: error.toLine(), at: now.toISOString() };
}

async function settledWithin(entry: { promise: Promise<unknown>; settled: boolean }, ms: number): Promise<boolean> {
  if (entry.settled) return true;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => { timer = setTimeout(() => resolve(false), Math.max(0, ms)); });
  try {
    return await Promise.race([entry.promise.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
