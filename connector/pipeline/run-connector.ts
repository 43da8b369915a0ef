/**
 * The collection loop. Each pass runs every content type at once (their fetches share one concurrency limit),
 * and each content type moves its checkpoint only when every sink has acknowledged every record before it.
 * --once: one pass that drains everything available now, then return. Otherwise: a pass every pollIntervalMs
 * until the abort signal fires; the batch in flight is finished and the state saved before returning.
 */
import type { ActivityApi } from '../api/activity-api.ts';
import type { ContentType } from '../api/content-types.ts';
import { BlobFetcher, FetchSlots } from '../collect/blob-fetcher.ts';
import { defaultOverlapMs, defaultSafetyLagMs } from '../collect/windows.ts';
import { ConnectorError } from '../errors.ts';
import type { Sink } from '../sinks/sink.ts';
import type { Logger } from '../status/log.ts';
import type { Telemetry } from '../status/telemetry.ts';
import { FileStateStore } from '../state/file-state-store.ts';
import { emptyContentTypeState, latestSinkPositions, type StateStore } from '../state/state.ts';
import { CommitLane } from './commit-lane.ts';
import { ContentTypeCollector } from './content-type-collector.ts';
import type { SinkRetryPolicy } from './sink-fanout.ts';

export interface RunConnectorOptions {
  api: ActivityApi;
  contentTypes: ContentType[];
  /** First run only (no state for a content type): where to start. Later runs resume from state. */
  since: Date;
  once: boolean;
  stateDir: string;
  sinks: Sink[];
  telemetry: Telemetry;
  logger: Logger;
  abortSignal?: AbortSignal;
  now?: () => Date;
  /** Between passes when not `once`; default 60 s. */
  pollIntervalMs?: number;
  /** Blobs fetched at once, across all content types; default 8. */
  fetchConcurrency?: number;
  /** Records per sink batch; default 5,000. */
  batchMaxRecords?: number;
  /** Approximate bytes per sink batch (as received from the API); default 8 MiB. */
  batchMaxBytes?: number;
  /** A batch is written once its oldest record waited this long for more; default 1 s. */
  batchMaxWaitMs?: number;
  /** How far behind the checkpoint each pass lists again, for content listed late; default 2 h. */
  overlapMs?: number;
  /** The checkpoint stays at least this far behind server time now; default 15 min. */
  safetyLagMs?: number;
  /** Record Ids kept for de-duplication: blobs up to this much older than the re-listed horizon; default 24 h. */
  dedupeHorizonMs?: number;
  /** ... and at most this many per content type; default 100,000. */
  dedupeMaxIds?: number;
  sinkRetry?: SinkRetryPolicy;
  /** A store other than the state directory's files. */
  stateStore?: StateStore;
}

export interface RunSummary {
  records: number;
  blobs: number;
  duplicates: number;
  expired: number;
  errors: Array<{ contentType: ContentType; code: string; message: string }>;
}

/** Errors no retry can fix: a `--once` run stops on them instead of reporting and carrying on. */
const fatalCodes = new Set(['AF10001', 'AF20010', 'AUDIT_LOG_DISABLED', 'UNAUTHORIZED', 'AF20020', 'AF20023']);

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => { clearTimeout(timer); signal?.removeEventListener('abort', done); resolve(); };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

export async function runConnector(options: RunConnectorOptions): Promise<RunSummary> {
  const store = options.stateStore ?? (await FileStateStore.open(options.stateDir));
  const summary: RunSummary = { records: 0, blobs: 0, duplicates: 0, expired: 0, errors: [] };
  const now = options.now ?? (() => new Date());
  const { logger, abortSignal } = options;
  const opened: Sink[] = [];
  try {
    const states = await store.loadAll();
    const resume = latestSinkPositions(states.values());
    for (const sink of options.sinks) {
      await sink.open(resume.positions[sink.name], abortSignal ? { abortSignal } : {});
      opened.push(sink);
    }
    const lane = new CommitLane(store, options.sinks, resume, { logger, stopSignal: abortSignal, ...(options.sinkRetry ? { retry: options.sinkRetry } : {}) });
    const fetcher = new BlobFetcher(options.api, new FetchSlots(options.fetchConcurrency ?? 8));
    const settings = {
      since: options.since, now, abortSignal,
      overlapMs: options.overlapMs ?? defaultOverlapMs,
      safetyLagMs: options.safetyLagMs ?? defaultSafetyLagMs,
      fetchAhead: options.fetchConcurrency ?? 8,
      batchMaxRecords: options.batchMaxRecords ?? 5000,
      batchMaxBytes: options.batchMaxBytes ?? 8 * 1024 * 1024,
      batchMaxWaitMs: options.batchMaxWaitMs ?? 1000,
      dedupeHorizonMs: options.dedupeHorizonMs ?? 24 * 3_600_000,
      dedupeMaxIds: options.dedupeMaxIds ?? 100_000,
    };
    const parts = {
      api: options.api, fetcher, lane, logger,
      source: options.telemetry.component('collector', 'source'),
      pipeline: options.telemetry.component('pipeline', 'transform'),
    };
    const collectors = options.contentTypes.map((contentType) => new ContentTypeCollector(contentType, states.get(contentType) ?? emptyContentTypeState(contentType), parts, settings));
    const first = collectors[0];
    if (first && lane.needsStartingPositions()) await lane.recordStartingPositions(first.state);

    for (;;) {
      const passes = await Promise.allSettled(collectors.map((collector) => collector.pass()));
      let fatal: ConnectorError | undefined;
      for (const [index, pass] of passes.entries()) {
        const collector = collectors[index]!;
        if (pass.status === 'fulfilled') {
          summary.records += pass.value.records;
          summary.blobs += pass.value.blobs;
          summary.duplicates += pass.value.duplicates;
          summary.expired += pass.value.expired;
          for (const error of pass.value.errors) {
            summary.errors.push({ contentType: collector.contentType, code: error.code, message: error.toLine() });
            if (fatalCodes.has(error.code)) fatal ??= error;
          }
        } else if (!abortSignal?.aborted || lane.failure !== undefined) {
          const error = pass.reason instanceof ConnectorError ? pass.reason : new ConnectorError('ERROR', String(pass.reason?.message ?? pass.reason), { cause: pass.reason });
          summary.errors.push({ contentType: collector.contentType, code: error.code, message: error.toLine() });
          collector.recordError(error);
          fatal ??= error;
        }
      }
      if (lane.failure !== undefined) throw lane.failure;
      if (options.once && fatal && !abortSignal?.aborted) throw fatal;
      if (fatal) logger.error({ component: 'pipeline', code: fatal.code, reason: fatal.toLine() }, 'a pass failed; the checkpoint holds and the next pass retries');
      if (options.once || abortSignal?.aborted) break;
      await sleep(options.pollIntervalMs ?? 60_000, abortSignal);
      if (abortSignal?.aborted) break;
    }
    // Errors recorded outside a commit (a pass that threw) reach the state files for `status`.
    for (const collector of collectors) {
      if (lane.failure === undefined) await lane.commit(collector.state, undefined, () => {}).catch(() => {});
    }
    return summary;
  } finally {
    for (const sink of opened) await sink.close().catch(() => {});
    await store.close();
  }
}
