/**
 * The batcher: turns a source's items (in order) into sink batches bounded by records, bytes and wait.
 * Duplicates are dropped on the way in. An item is acknowledged with the batch that holds its last record (or
 * with the open batch when it had none left), so a blob is only ever counted delivered once all its records
 * are. A batch is cut when it is full, when its oldest record waited `maxWaitMs` for the next item, or after an
 * item that asks for it (`cut`).
 */
import type { RawRecord } from '../core/records.ts';
import type { RecordKey } from '../core/commit.ts';
import type { ComponentReporter } from '../observe/telemetry.ts';
import type { SourceItem } from '../sources/source.ts';
import type { RecordDeduplicator } from './record-deduplicator.ts';

export interface Batch<Item extends SourceItem = SourceItem> {
  readonly records: RawRecord[];
  bytes: number;
  /** Keys of `records` (those with an Id), remembered by the store once the batch commits. */
  readonly keys: RecordKey[];
  /** Items whose last record is in this batch: acknowledged when it commits. */
  readonly items: Item[];
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
  /** Told each item's records and bytes as they come in. */
  readonly reporter?: ComponentReporter | undefined;
}

export function emptyBatch<Item extends SourceItem>(now: number): Batch<Item> {
  return { records: [], bytes: 0, keys: [], items: [], duplicates: 0, openedAt: now };
}

export function isEmpty(batch: Batch<SourceItem>): boolean {
  return batch.records.length === 0 && batch.items.length === 0 && batch.duplicates === 0;
}

const timedOut = Symbol('timed out');

function within<T>(promise: Promise<T>, ms: number): Promise<T | typeof timedOut> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<typeof timedOut>((resolve) => { timer = setTimeout(() => resolve(timedOut), Math.max(0, ms)); });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Yields full or waited-out batches, and at the end the last one (which may be empty). */
export async function* batchRecords<Item extends SourceItem>(items: AsyncIterable<Item>, options: BatcherOptions): AsyncGenerator<Batch<Item>> {
  const { bounds, dedupe, reporter } = options;
  const source = items[Symbol.asyncIterator]();
  let batch = emptyBatch<Item>(Date.now());
  const full = () => batch.records.length >= bounds.maxRecords || batch.bytes >= bounds.maxBytes;
  try {
    for (;;) {
      let pending = source.next();
      if (batch.records.length > 0) {
        const waited = Date.now() - batch.openedAt;
        const first = waited >= bounds.maxWaitMs ? timedOut : await within(pending, bounds.maxWaitMs - waited);
        if (first === timedOut) {
          yield batch;
          batch = emptyBatch(Date.now());
        } else {
          pending = Promise.resolve(first);
        }
      }
      const next = await pending;
      if (next.done) break;
      const item = next.value;
      reporter?.received(item.records.length, item.bytes);
      const { fresh, duplicates } = item.records.length > 0 ? await dedupe.select(item.records) : { fresh: [], duplicates: 0 };
      batch.duplicates += duplicates;
      for (const record of fresh) {
        if (full()) {
          yield batch;
          batch = emptyBatch(Date.now());
        }
        if (batch.records.length === 0) batch.openedAt = Date.now();
        batch.records.push(record);
        batch.bytes += record.bytes.length;
        if (record.id !== undefined) batch.keys.push({ id: record.id, creationTime: record.creationTime });
      }
      // Its records are in batches now: the batch keeps only what acknowledges it, not a second reference to each record.
      batch.items.push(item.records.length === 0 ? item : { ...item, records: [] });
      if (item.cut || full()) {
        yield batch;
        batch = emptyBatch(Date.now());
      }
    }
    yield batch;
  } finally {
    await source.return?.(undefined);
  }
}
