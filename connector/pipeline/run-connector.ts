/**
 * The collection loop: for each content type, plan windows from its checkpoint, list content, fetch blobs with
 * bounded concurrency, drop records already delivered, write each blob to every sink, and only when every
 * sink has acknowledged it, count the blob as delivered and save the state (cursors and sink positions in one
 * atomic write). A checkpoint moves past a window only when all its blobs are delivered or recorded as expired.
 */
import type { ActivityApi, ContentBlob, FetchedContent } from '../api/activity-api.ts';
import type { ContentType } from '../api/content-types.ts';
import { ActivityApiError } from '../api/af-errors.ts';
import { planWindows } from '../collect/windows.ts';
import { ConnectorError } from '../errors.ts';
import type { AuditRecord, Sink, SinkBatch } from '../sinks/sink.ts';
import type { Logger } from '../status/log.ts';
import type { Telemetry } from '../status/telemetry.ts';
import { FileStateStore } from '../state/file-state-store.ts';
import { emptyCursor, type ConnectorState, type Cursor, type StateStore } from '../state/state.ts';
import { sleep } from '../api/retry-policy.ts';
import { Deduplicator } from './deduplicator.ts';

export interface RunConnectorOptions {
  api: ActivityApi;
  contentTypes: ContentType[];
  since: Date;
  once: boolean;
  stateDir: string;
  sinks: Sink[];
  telemetry: Telemetry;
  logger: Logger;
  abortSignal?: AbortSignal;
  now?: () => Date;
  pollIntervalMs?: number;
  fetchConcurrency?: number;
  batchMaxRecords?: number;
  /** How far behind the checkpoint to list again for blobs listed late (default 4 h). */
  overlapMs?: number;
  /** A store other than the state directory's files (tests). */
  stateStore?: StateStore;
}

export interface RunSummary {
  records: number;
  blobs: number;
  duplicates: number;
  expired: number;
  errors: Array<{ contentType: ContentType; code: string; message: string }>;
}

const hour = 3_600_000;
const fatalCodes = new Set(['AF10001', 'AF20010', 'AUDIT_LOG_DISABLED', 'UNAUTHORIZED', 'AF20020', 'AF20023']);
const maxExpiredKept = 50;

async function writeWithRetry(sink: Sink, batch: SinkBatch, logger: Logger, signal: AbortSignal | undefined) {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await sink.write(batch, signal ? { abortSignal: signal } : {});
    } catch (error) {
      if (signal?.aborted) throw error;
      // A sink that is down holds the checkpoint and the whole pipeline back: backpressure, never loss.
      const delay = Math.min(60_000, 500 * 2 ** Math.min(attempt - 1, 7));
      logger.warn({ component: 'sink', sink: sink.name, attempt, delayMs: delay, code: (error as ConnectorError).code, err: (error as Error).message }, 'sink write failed; retrying the same batch');
      await sleep(delay, signal);
    }
  }
}

class ContentTypeCollector {
  readonly #contentType: ContentType;
  readonly #options: RunConnectorOptions;
  readonly #state: ConnectorState;
  readonly #cursor: Cursor;
  readonly #dedupe: Deduplicator;
  readonly #save: (force?: boolean) => Promise<void>;
  readonly #summary: RunSummary;
  readonly #now: () => Date;

  constructor(contentType: ContentType, options: RunConnectorOptions, state: ConnectorState, save: (force?: boolean) => Promise<void>, summary: RunSummary) {
    this.#contentType = contentType;
    this.#options = options;
    this.#state = state;
    this.#cursor = state.cursors[contentType] ??= emptyCursor();
    this.#dedupe = new Deduplicator(this.#cursor.recentIds);
    this.#save = save;
    this.#summary = summary;
    this.#now = options.now ?? (() => new Date());
  }

  get #overlapMs(): number {
    return this.#options.overlapMs ?? 4 * hour;
  }

  async pass(): Promise<void> {
    const { api, abortSignal } = this.#options;
    const windows = planWindows({
      checkpoint: this.#cursor.checkpoint ? new Date(this.#cursor.checkpoint) : undefined,
      since: this.#options.since, now: this.#now(), skewMs: api.clockSkewMs, overlapMs: this.#overlapMs,
    });
    for (const window of windows) {
      abortSignal?.throwIfAborted();
      const blobs = await this.#list(window);
      await this.#deliver(blobs);
      const previous = this.#cursor.checkpoint ? Date.parse(this.#cursor.checkpoint) : 0;
      if (window.end.getTime() > previous) this.#cursor.checkpoint = window.end.toISOString();
      this.#prune();
      this.#cursor.lastError = undefined;
      await this.#save();
    }
  }

  async #list(window: { start: Date; end: Date }): Promise<ContentBlob[]> {
    const blobs: ContentBlob[] = [];
    const collect = async () => {
      for await (const page of this.#options.api.listContent(this.#contentType, window, this.#signalOptions())) {
        for (const blob of page) if (this.#cursor.delivered[blob.contentId] === undefined) blobs.push(blob);
      }
    };
    try {
      await collect();
    } catch (error) {
      if (!(error instanceof ActivityApiError && error.code === 'AF20022')) throw error;
      this.#options.logger.warn({ component: 'collector', contentType: this.#contentType }, 'no subscription (AF20022): starting it');
      await this.#options.api.startSubscription(this.#contentType, this.#signalOptions());
      blobs.length = 0;
      await collect();
    }
    const unique = new Map(blobs.map((blob) => [blob.contentId, blob]));
    return [...unique.values()].sort((a, b) => a.contentCreated.localeCompare(b.contentCreated));
  }

  #signalOptions() {
    return this.#options.abortSignal ? { abortSignal: this.#options.abortSignal } : {};
  }

  /** Fetches ahead with bounded concurrency, delivers strictly in listing order. */
  async #deliver(blobs: ContentBlob[]): Promise<void> {
    const concurrency = this.#options.fetchConcurrency ?? 8;
    const inFlight: Array<Promise<FetchedContent | ActivityApiError>> = [];
    let next = 0;
    const launch = () => {
      const blob = blobs[next++]!;
      const fetched = this.#options.api.fetchContent(blob, this.#signalOptions()).catch((error: unknown) => {
        if (error instanceof ActivityApiError && error.code === 'AF20051') return error;
        throw error;
      });
      fetched.catch(() => {}); // observed below, in order
      inFlight.push(fetched);
    };
    while (next < blobs.length && inFlight.length < concurrency) launch();
    for (let index = 0; index < blobs.length; index += 1) {
      const result = await inFlight.shift()!;
      if (next < blobs.length) launch();
      const blob = blobs[index]!;
      if (result instanceof ActivityApiError) this.#recordExpired(blob);
      else await this.#deliverBlob(blob, result.records);
    }
  }

  #recordExpired(blob: ContentBlob): void {
    const detectedAt = this.#now().toISOString();
    this.#cursor.expiredCount += 1;
    this.#cursor.expired.push({ contentId: blob.contentId, contentCreated: blob.contentCreated, detectedAt });
    if (this.#cursor.expired.length > maxExpiredKept) this.#cursor.expired.splice(0, this.#cursor.expired.length - maxExpiredKept);
    this.#cursor.delivered[blob.contentId] = blob.contentCreated;
    this.#summary.expired += 1;
    this.#options.telemetry.component('collector', 'source').error({ stage: 'receiving', code: 'AF20051', message: `content ${blob.contentId} expired before it was fetched`, discarded: 0 });
    this.#options.logger.error({ component: 'collector', contentType: this.#contentType, contentId: blob.contentId, contentCreated: blob.contentCreated, code: 'AF20051' }, 'content expired before it could be fetched: its records are lost at the source');
  }

  async #deliverBlob(blob: ContentBlob, records: readonly AuditRecord[]): Promise<void> {
    const createdMs = Date.parse(blob.contentCreated);
    const fresh: AuditRecord[] = [];
    const inBlob = new Set<string>();
    for (const record of records) {
      const id = typeof record.Id === 'string' ? record.Id : undefined;
      if (id !== undefined && (this.#dedupe.has(id) || inBlob.has(id))) {
        this.#cursor.duplicatesDropped += 1;
        this.#summary.duplicates += 1;
        continue;
      }
      if (id !== undefined) inBlob.add(id);
      fresh.push(record);
    }
    const pipeline = this.#options.telemetry.component('pipeline', 'transform');
    pipeline.received(records.length, 0);
    const maxRecords = this.#options.batchMaxRecords ?? 5000;
    for (let offset = 0; offset < fresh.length; offset += maxRecords) {
      const batch: SinkBatch = { contentType: this.#contentType, records: fresh.slice(offset, offset + maxRecords) };
      for (const sink of this.#options.sinks) {
        const position = await writeWithRetry(sink, batch, this.#options.logger, this.#options.abortSignal);
        if (position !== undefined) this.#state.sinkPositions[sink.name] = position;
      }
    }
    pipeline.sent(fresh.length, 0);
    for (const id of inBlob) this.#dedupe.add(id, createdMs);
    this.#cursor.delivered[blob.contentId] = blob.contentCreated;
    this.#cursor.recordsDelivered += fresh.length;
    this.#cursor.blobsDelivered += 1;
    this.#cursor.lastContentSeen = blob.contentCreated;
    this.#cursor.lastDeliveryAt = this.#now().toISOString();
    this.#summary.records += fresh.length;
    this.#summary.blobs += 1;
    await this.#save(false);
  }

  #prune(): void {
    const checkpoint = this.#cursor.checkpoint ? Date.parse(this.#cursor.checkpoint) : 0;
    const keepFrom = checkpoint - this.#overlapMs - hour;
    for (const [contentId, created] of Object.entries(this.#cursor.delivered)) {
      if (Date.parse(created) < keepFrom) delete this.#cursor.delivered[contentId];
    }
    this.#dedupe.prune(keepFrom - 20 * hour);
  }

  /** Copies what only lives in memory into the cursor, right before a save. */
  snapshot(): void {
    this.#cursor.recentIds = this.#dedupe.entries();
  }

  recordError(error: unknown): void {
    const code = error instanceof ConnectorError ? error.code : 'ERROR';
    const message = error instanceof ConnectorError ? error.toLine() : String(error);
    this.#cursor.lastError = { code, message, at: this.#now().toISOString() };
    this.#summary.errors.push({ contentType: this.#contentType, code, message });
  }
}

export async function runConnector(options: RunConnectorOptions): Promise<RunSummary> {
  const store = options.stateStore ?? (await FileStateStore.open(options.stateDir));
  const summary: RunSummary = { records: 0, blobs: 0, duplicates: 0, expired: 0, errors: [] };
  const now = options.now ?? (() => new Date());
  const { logger } = options;
  try {
    const state = await store.load();
    state.lastRun = { startedAt: now().toISOString(), finishedAt: undefined, mode: options.once ? 'once' : 'continuous' };
    for (const sink of options.sinks) await sink.open(state.sinkPositions[sink.name]);
    let collectors: Array<{ contentType: ContentType; collector: ContentTypeCollector }> = [];
    let lastSave = 0;
    // Saves at most once a second between blobs (and always at window ends): a crash in between only means the
    // file sink is cut back and the same blobs are fetched again, never a loss or a duplicate.
    const save = async (force = true) => {
      if (!force && Date.now() - lastSave < 1000) return;
      for (const { collector } of collectors) collector.snapshot();
      state.updatedAt = now().toISOString();
      await store.save(state);
      lastSave = Date.now();
    };
    collectors = options.contentTypes.map((contentType) => ({ contentType, collector: new ContentTypeCollector(contentType, options, state, save, summary) }));
    for (;;) {
      for (const { contentType, collector } of collectors) {
        try {
          await collector.pass();
        } catch (error) {
          if (options.abortSignal?.aborted) break;
          collector.recordError(error);
          await save();
          logger.error({ component: 'collector', contentType, code: (error as ConnectorError).code, err: (error as Error).message }, 'collection pass failed; the checkpoint holds and the next pass retries');
          if (options.once && error instanceof ConnectorError && fatalCodes.has(error.code)) throw error;
        }
      }
      if (options.once || options.abortSignal?.aborted) break;
      try {
        await sleep(options.pollIntervalMs ?? 60_000, options.abortSignal);
      } catch {
        break;
      }
    }
    state.lastRun.finishedAt = now().toISOString();
    await save();
    return summary;
  } finally {
    for (const sink of options.sinks) await sink.close().catch(() => {});
    await store.close();
  }
}
