/**
 * The batcher: turns fetch outcomes (in listing order) into sink batches bounded by records, bytes and wait.
 * Duplicates are dropped on the way in. A blob is acknowledged with the batch that holds its last record (or
 * with the open batch when it had none left), so a blob is only ever counted delivered once all its records
 * are. A batch is cut when it is full, or when its oldest record waited `maxWaitMs` for the next outcome.
 */
import type { ContentBlob } from '../sources/activity-api/activity-api.ts';
import type { FetchOutcome } from '../sources/activity-api/blob-fetcher.ts';
import type { RawRecord } from '../core/records.ts';
import type { RecordKey, SetAsideRecord } from '../core/commit.ts';
import type { RecordDeduplicator } from './record-deduplicator.ts';

export interface Batch {
  readonly records: RawRecord[];
  bytes: number;
  /** Keys of `records` (those with an Id), remembered by the store once the batch commits. */
  readonly keys: RecordKey[];
  /** Blobs whose last record is in this batch: delivered when it commits. */
  readonly blobs: ContentBlob[];
  /** Blobs found expired (AF20051): recorded when it commits. */
  readonly expired: ContentBlob[];
  /** Elements of its blobs that are not audit records: set aside (the dead-letter file) when it commits. */
  readonly setAside: SetAsideRecord[];
  /** Give the bodies of `blobs` back for reuse: called once the batch committed (no record of them is needed). */
  readonly releases: Array<() => void>;
  duplicates: number;
  openedAt: number;
}

export interface BatchBounds {
  readonly maxRecords: number;
  readonly maxBytes: number;
  readonly maxWaitMs: number;
}

export interface BatcherOptions {
  readonly bounds: BatchBounds;
  readonly dedupe: RecordDeduplicator;
  /** A blob that could not be fetched: it is in no batch and holds the checkpoint. */
  readonly onFailed: (outcome: Extract<FetchOutcome, { kind: 'failed' }>) => void;
  readonly onExpired?: (outcome: Extract<FetchOutcome, { kind: 'expired' }>) => void;
  readonly onReceived?: (records: number, bytes: number) => void;
  /** A blob with elements that are not audit records (they go with the batch that holds the blob). */
  readonly onSetAside?: (outcome: Extract<FetchOutcome, { kind: 'records' }>) => void;
  readonly clock?: () => number;
}

export function emptyBatch(now: number): Batch {
  return { records: [], bytes: 0, keys: [], blobs: [], expired: [], setAside: [], releases: [], duplicates: 0, openedAt: now };
}

export function isEmpty(batch: Batch): boolean {
  return batch.records.length === 0 && batch.blobs.length === 0 && batch.expired.length === 0 && batch.setAside.length === 0 && batch.duplicates === 0;
}

const timedOut = Symbol('timed out');

function within<T>(promise: Promise<T>, ms: number): Promise<T | typeof timedOut> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<typeof timedOut>((resolve) => { timer = setTimeout(() => resolve(timedOut), Math.max(0, ms)); });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Yields full or waited-out batches, and at the end the last one (which may be empty). */
export async function* batchRecords(outcomes: AsyncIterable<FetchOutcome>, options: BatcherOptions): AsyncGenerator<Batch> {
  const { bounds, dedupe } = options;
  const clock = options.clock ?? Date.now;
  const source = outcomes[Symbol.asyncIterator]();
  let batch = emptyBatch(clock());
  const full = () => batch.records.length >= bounds.maxRecords || batch.bytes >= bounds.maxBytes;
  try {
    for (;;) {
      let pending = source.next();
      if (batch.records.length > 0) {
        const waited = clock() - batch.openedAt;
        const first = waited >= bounds.maxWaitMs ? timedOut : await within(pending, bounds.maxWaitMs - waited);
        if (first === timedOut) {
          yield batch;
          batch = emptyBatch(clock());
        } else {
          pending = Promise.resolve(first);
        }
      }
      const next = await pending;
      if (next.done) break;
      const outcome = next.value;
      if (outcome.kind === 'failed') {
        options.onFailed(outcome);
        continue;
      }
      if (outcome.kind === 'expired') {
        options.onExpired?.(outcome);
        batch.expired.push(outcome.blob);
        continue;
      }
      options.onReceived?.(outcome.records.length, outcome.bytes);
      if (outcome.rejected.length > 0) {
        options.onSetAside?.(outcome);
        for (const element of outcome.rejected) batch.setAside.push({ contentId: outcome.blob.contentId, ...element });
      }
      const { fresh, duplicates } = await dedupe.select(outcome.records);
      batch.duplicates += duplicates;
      for (const record of fresh) {
        if (full()) {
          yield batch;
          batch = emptyBatch(clock());
        }
        if (batch.records.length === 0) batch.openedAt = clock();
        batch.records.push(record);
        batch.bytes += record.bytes.length;
        if (record.id !== undefined) batch.keys.push({ id: record.id, creationTime: record.creationTime });
      }
      batch.blobs.push(outcome.blob);
      if (outcome.release) batch.releases.push(outcome.release);
      if (full()) {
        yield batch;
        batch = emptyBatch(clock());
      }
    }
    yield batch;
  } finally {
    await source.return?.(undefined);
  }
}
