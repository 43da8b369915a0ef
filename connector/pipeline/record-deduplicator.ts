/**
 * Drops records delivered before (the service delivers some records in more than one blob, days apart): a record
 * is known by its Id and CreationTime (RecordKey). What was committed is asked of the store; records taken into a
 * batch that is not committed yet are held here, so memory holds only the batches in flight, whatever the backlog.
 * The live passes and the sweep of one content type run side by side: they share the held keys (`pending`), so a
 * record that both find is delivered by one of them; each gives back only its own keys when it ends early.
 */
import type { CollectedType } from '../../contract/content-types.ts';
import type { RawRecord } from '../core/records.ts';
import { type StateStore } from '../state/store.ts';
import { creationSecond, type RecordKey } from '../core/commit.ts';

function heldKey(key: RecordKey): string {
  return `${creationSecond(key.creationTime)} ${key.id}`;
}

export class RecordDeduplicator {
  readonly #store: StateStore;
  readonly #contentType: CollectedType;
  readonly #pending: Set<string>;
  readonly #mine = new Set<string>();

  constructor(store: StateStore, contentType: CollectedType, pending = new Set<string>()) {
    this.#store = store;
    this.#contentType = contentType;
    this.#pending = pending;
  }

  /** The records not delivered before, in order; they are held as taken until `committed`. */
  async select(records: readonly RawRecord[]): Promise<{ fresh: RawRecord[]; duplicates: number }> {
    const held: Array<string | undefined> = records.map((record) => (record.id === undefined ? undefined : heldKey(record as RecordKey)));
    // The store answers with Ids: one question holds each Id once, so that an Id found stands for that one key.
    const questions: RecordKey[][] = [];
    const asked = new Map<string, number>();
    const keys = new Set<string>();
    records.forEach((record, i) => {
      const key = held[i];
      if (key === undefined || this.#pending.has(key) || keys.has(key)) return;
      keys.add(key);
      const round = asked.get(record.id!) ?? 0;
      asked.set(record.id!, round + 1);
      (questions[round] ??= []).push(record as RecordKey);
    });
    // Held keys are checked first and released only after their commit, so a key is always in one of the two.
    const stored = new Set<string>();
    for (const question of questions) {
      for (const id of await this.#store.seenRecords(this.#contentType, question)) {
        const key = question.find((candidate) => candidate.id === id);
        if (key) stored.add(heldKey(key));
      }
    }
    const fresh: RawRecord[] = [];
    let duplicates = 0;
    records.forEach((record, i) => {
      const key = held[i];
      if (key === undefined) {
        fresh.push(record); // nothing to recognise it by: delivered every time it is served
      } else if (this.#pending.has(key) || stored.has(key)) {
        duplicates += 1;
      } else {
        this.#pending.add(key);
        this.#mine.add(key);
        fresh.push(record);
      }
    });
    return { fresh, duplicates };
  }

  /** These records are in the store now. */
  committed(keys: readonly RecordKey[]): void {
    for (const key of keys) {
      const held = heldKey(key);
      this.#pending.delete(held);
      this.#mine.delete(held);
    }
  }

  /** Ids held for batches that will never commit (a pass that ended early). */
  reset(): void {
    for (const key of this.#mine) this.#pending.delete(key);
    this.#mine.clear();
  }

  get held(): number {
    return this.#mine.size;
  }
}
