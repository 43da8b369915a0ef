import { describe, expect, it } from 'vitest';
import type { ContentBlob } from '../../../connector/sources/activity-api/activity-api.ts';
import { batchRecords, type Batch, type BatcherOptions } from '../../../connector/pipeline/batcher.ts';
import { RecordDeduplicator } from '../../../connector/pipeline/record-deduplicator.ts';
import type { StateStore } from '../../../connector/state/store.ts';
import type { RecordKey } from '../../../connector/core/commit.ts';
import type { SourceItem } from '../../../connector/sources/source.ts';
import { auditRecord } from './fake-activity-api.ts';

const blob = (contentId: string): ContentBlob => ({
  contentType: 'Audit.SharePoint', contentId, contentUri: `https://manage.office.com/api/v1.0/t/activity/feed/audit/${contentId}`,
  contentCreated: '2026-11-25T10:00:00.000Z', contentExpiration: '2026-12-02T10:00:00.000Z',
});

type Item = SourceItem & { readonly blob: ContentBlob };

const records = (contentId: string, ids: string[], cut?: true): Item => {
  const list = ids.map((id) => auditRecord(id));
  return { blob: blob(contentId), records: list, bytes: list.reduce((n, r) => n + r.bytes.length, 0), ...(cut ? { cut } : {}) };
};

/** Only what the deduplicator asks of a store: the Ids committed before. */
function storeWith(seen: string[] = []): StateStore {
  const ids = new Set(seen);
  return { seenRecords: async (_type: string, asked: readonly RecordKey[]) => new Set(asked.filter((key) => ids.has(key.id)).map((key) => key.id)) } as unknown as StateStore;
}

async function* from(items: Item[]): AsyncGenerator<Item> {
  yield* items;
}

async function collect(items: AsyncIterable<Item>, options: Partial<BatcherOptions> & { seen?: string[] } = {}): Promise<Array<Batch<Item>>> {
  const dedupe = new RecordDeduplicator(storeWith(options.seen), 'Audit.SharePoint');
  const batches: Array<Batch<Item>> = [];
  for await (const batch of batchRecords(items, { bounds: { maxRecords: 3, maxBytes: 1 << 20, maxWaitMs: 60_000 }, dedupe, ...options })) {
    batches.push(batch);
    dedupe.committed(batch.keys);
  }
  return batches;
}

describe('batchRecords', () => {
  it('cuts batches at maxRecords and acknowledges a blob with the batch holding its last record', async () => {
    const batches = await collect(from([records('b1', ['r1', 'r2']), records('b2', ['r3', 'r4', 'r5', 'r6']), records('b3', [])]));
    expect(batches.map((b) => b.keys.map((k) => k.id))).toEqual([['r1', 'r2', 'r3'], ['r4', 'r5', 'r6'], []]);
    expect(batches.map((b) => b.items.map((x) => x.blob.contentId))).toEqual([['b1'], ['b2'], ['b3']]);
  });

  it('cuts batches at maxBytes, a record larger than the bound going alone', async () => {
    const size = auditRecord('r1').bytes.length;
    const batches = await collect(from([records('b1', ['r1', 'r2', 'r3'])]), { bounds: { maxRecords: 100, maxBytes: size + 1, maxWaitMs: 60_000 } });
    expect(batches.map((b) => b.keys.map((k) => k.id))).toEqual([['r1', 'r2'], ['r3']]);
  });

  it('drops records delivered before, repeated within a blob, or repeated in a later blob', async () => {
    const batches = await collect(from([records('b1', ['old', 'r1', 'r1']), records('b2', ['r1', 'r2'])]), { seen: ['old'] });
    expect(batches.flatMap((b) => b.keys.map((k) => k.id))).toEqual(['r1', 'r2']);
    expect(batches.reduce((n, b) => n + b.duplicates, 0)).toBe(3);
  });

  it('keeps the bytes of every record as fetched', async () => {
    const outcome = records('b1', ['r1', 'r2']);
    const [batch] = await collect(from([outcome]));
    expect(batch!.records.map((r) => r.bytes)).toEqual(outcome.records.map((r) => r.bytes));
    expect(batch!.bytes).toBe(outcome.bytes);
  });

  it('ends a batch after an item that asks for it, and acknowledges an item without records with the open batch', async () => {
    const batches = await collect(from([records('p1', ['r1'], true), records('gone', []), records('p2', ['r2', 'r3'], true)]));
    expect(batches.map((b) => b.items.map((x) => x.blob.contentId))).toEqual([['p1'], ['gone', 'p2'], []]);
    expect(batches.map((b) => b.keys.map((k) => k.id))).toEqual([['r1'], ['r2', 'r3'], []]);
  });

  it('writes a batch whose oldest record waited maxWaitMs while the next blob is still being fetched', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    async function* slow(): AsyncGenerator<Item> {
      yield records('b1', ['r1']);
      await gate;
      yield records('b2', ['r2']);
    }
    const dedupe = new RecordDeduplicator(storeWith(), 'Audit.SharePoint');
    const iterator = batchRecords(slow(), { bounds: { maxRecords: 100, maxBytes: 1 << 20, maxWaitMs: 20 }, dedupe })[Symbol.asyncIterator]();
    const first = await iterator.next(); // only the wait can end this batch: b2 is held back
    expect((first.value as Batch).keys.map((k) => k.id)).toEqual(['r1']);
    release();
    const rest: string[] = [];
    for (let next = await iterator.next(); !next.done; next = await iterator.next()) rest.push(...next.value.keys.map((k) => k.id));
    expect(rest).toEqual(['r2']);
  });
});

describe('RecordDeduplicator', () => {
  it('holds the Ids of uncommitted batches, and asks the store for the rest', async () => {
    const asked: string[][] = [];
    const store = { seenRecords: async (_t: string, keys: readonly RecordKey[]) => { asked.push(keys.map((k) => k.id)); return new Set(keys.map((k) => k.id).filter((id) => id === 'stored')); } } as unknown as StateStore;
    const dedupe = new RecordDeduplicator(store, 'Audit.SharePoint');
    const first = await dedupe.select([auditRecord('a'), auditRecord('stored')]);
    expect(first.fresh.map((r) => r.id)).toEqual(['a']);
    const second = await dedupe.select([auditRecord('a'), auditRecord('b')]);
    expect(second.fresh.map((r) => r.id)).toEqual(['b']);
    expect(second.duplicates).toBe(1);
    expect(asked).toEqual([['a', 'stored'], ['b']]); // a held Id is not asked for again
    dedupe.committed([auditRecord('a'), auditRecord('b')] as RecordKey[]);
    expect(dedupe.held).toBe(0);
  });

  it('delivers records without an Id every time (nothing to recognise them by)', async () => {
    const dedupe = new RecordDeduplicator(storeWith(), 'Audit.SharePoint');
    const anonymous = { id: undefined, creationTime: undefined, bytes: Buffer.from('{"Operation":"x"}') };
    expect((await dedupe.select([anonymous, anonymous])).fresh).toHaveLength(2);
  });
});

describe('RecordDeduplicator and CreationTime', () => {
  it('tells a stored record from one with the same Id and another CreationTime asked in the same blob', async () => {
    const stored = { id: 'same', creationTime: '2026-11-20T08:00:00' };
    const store = {
      seenRecords: async (_t: string, keys: readonly RecordKey[]) => new Set(keys.filter((k) => k.id === stored.id && k.creationTime === stored.creationTime).map((k) => k.id)),
    } as unknown as StateStore;
    const dedupe = new RecordDeduplicator(store, 'Audit.SharePoint');
    const later = { id: 'same', creationTime: '2026-11-21T09:30:00', bytes: Buffer.from('{"Id":"same","CreationTime":"2026-11-21T09:30:00"}') };
    const repeat = { ...stored, bytes: Buffer.from('{"Id":"same","CreationTime":"2026-11-20T08:00:00"}') };
    const { fresh, duplicates } = await dedupe.select([later, repeat]);
    expect(fresh).toEqual([later]);
    expect(duplicates).toBe(1);
  });
});
