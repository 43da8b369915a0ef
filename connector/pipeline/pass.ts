/**
 * Delivers one pass of a source: its items are batched (dropping repeated records), each batch is written to
 * every sink and committed through the lane with what the source says it changes, then the pass's last commit.
 * One batch commits while the next one fills: at most two batches of a unit are resident.
 */
import type { CollectedType } from '../../contract/content-types.ts';
import type { RunSettings } from '../config/settings.ts';
import { addCounts, type Counts } from '../core/counts.ts';
import type { ComponentReporter } from '../observe/telemetry.ts';
import type { Acknowledgement, SourcePass } from '../sources/source.ts';
import type { StateStore } from '../state/store.ts';
import { batchRecords, isEmpty, type Batch } from './batcher.ts';
import type { CommitLane } from './commit-lane.ts';
import { RecordDeduplicator } from './record-deduplicator.ts';

/**
 * Each commit of a unit: records it added, where the checkpoint and the covered range begin (progress.ts);
 * `reached`: the newest contentCreated delivered by a live pass's batch (how far the content type has got between checkpoints).
 */
export type ProgressListener = (contentType: CollectedType, change: { records: number; checkpoint: number | undefined; coveredFrom: number | undefined; reached?: number | undefined }) => void;

export interface PassDelivery {
  readonly contentType: CollectedType;
  readonly lane: CommitLane;
  /** The tenant's view of the state. */
  readonly store: StateStore;
  readonly settings: RunSettings;
  /** The pipeline's telemetry component. */
  readonly reporter: ComponentReporter;
  readonly signal: AbortSignal;
  readonly now: () => Date;
  /** Record keys held by batches in flight, shared by the passes of this unit. */
  readonly pending: Set<string>;
  /** The run's counts, added to as each batch commits (so a pass cut short by a stop still counts what it committed). */
  readonly totals?: Counts | undefined;
  readonly onProgress?: ProgressListener | undefined;
}

/** Ends with the pass's last commit; `pass` then says where its checkpoint stands and what went wrong. */
export async function runPass(pass: SourcePass, delivery: PassDelivery): Promise<void> {
  const { contentType, lane, store, settings, reporter, signal } = delivery;
  const dedupe = new RecordDeduplicator(store, contentType, delivery.pending);
  const batches = batchRecords(pass, {
    bounds: { maxRecords: settings.batchMaxRecords, maxBytes: settings.batchMaxBytes, maxWaitMs: settings.batchMaxWaitMs }, dedupe, reporter,
  });

  /** Writes the batch (if any) with the source's records, commits what both change, and counts it. */
  const commit = async (acknowledged: Acknowledgement, batch?: Batch) => {
    const records = batch === undefined ? acknowledged.records : acknowledged.records.length > 0 ? [...batch.records, ...acknowledged.records] : batch.records;
    const sent = batch === undefined ? {} : { records: batch.records.length, duplicates: batch.duplicates };
    await lane.commit(records.length > 0 ? { contentType, records } : undefined, () => (batch === undefined ? acknowledged.change() : { ...acknowledged.change(), ...sent, recordKeys: batch.keys }), store);
    if (delivery.totals) {
      addCounts(delivery.totals, acknowledged.counts);
      addCounts(delivery.totals, sent);
    }
    delivery.onProgress?.(contentType, { records: sent.records ?? 0, checkpoint: pass.checkpoint, coveredFrom: pass.listedFrom, ...(acknowledged.reached === undefined ? {} : { reached: acknowledged.reached }) });
  };
  const deliver = async (batch: Batch) => {
    await commit(pass.acknowledge(batch.items, delivery.now()), batch);
    // Every sink acknowledged and holds no reference to the records (the Sink contract): their bodies can be reused.
    for (const item of batch.items) item.release?.();
    dedupe.committed(batch.keys);
    reporter.sent(batch.records.length, batch.bytes);
  };

  let committing: Promise<void> | undefined;
  try {
    for await (const batch of batches) {
      if (committing) await committing;
      committing = undefined;
      if (isEmpty(batch)) continue;
      signal.throwIfAborted(); // a stop finishes the batch in flight, and starts no other
      committing = deliver(batch);
      committing.catch(() => {}); // awaited below or before the next batch
    }
    if (committing) await committing;
    committing = undefined;
    await commit(await pass.end());
  } finally {
    if (committing) await committing.catch(() => {});
    dedupe.reset();
  }
}
