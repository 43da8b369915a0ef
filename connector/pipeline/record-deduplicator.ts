/**
 * Drops records whose Id was delivered before (the service delivers some records in more than one blob, days
 * apart). What was committed is asked of the store; Ids taken into a batch that is not committed yet are held
 * here, so memory holds only the Ids of the batches in flight, whatever the backlog.
 */
import type { ContentType } from '../api/content-types.ts';
import type { RawRecord } from '../sinks/sink.ts';
import type { StateStore } from '../state/store.ts';

export class RecordDeduplicator {
  readonly #store: StateStore;
  readonly #contentType: ContentType;
  readonly #pending = new Set<string>();

  constructor(store: StateStore, contentType: ContentType) {
    this.#store = store;
    this.#contentType = contentType;
  }

  /** The records not delivered before, in order; their Ids are held as taken until `committed`. */
  async select(records: readonly RawRecord[]): Promise<{ fresh: RawRecord[]; duplicates: number }> {
    const candidates: string[] = [];
    for (const record of records) if (record.id !== undefined && !this.#pending.has(record.id)) candidates.push(record.id);
    // Held Ids are checked first and released only after their commit, so an Id is always in one of the two.
    const stored = candidates.length > 0 ? await this.#store.seenRecordIds(this.#contentType, candidates) : new Set<string>();
    const fresh: RawRecord[] = [];
    let duplicates = 0;
    for (const record of records) {
      const id = record.id;
      if (id === undefined) {
        fresh.push(record); // nothing to recognise it by: delivered every time it is served
      } else if (this.#pending.has(id) || stored.has(id)) {
        duplicates += 1;
      } else {
        this.#pending.add(id);
        fresh.push(record);
      }
    }
    return { fresh, duplicates };
  }

  /** These Ids are in the store now. */
  committed(ids: readonly string[]): void {
    for (const id of ids) this.#pending.delete(id);
  }

  /** Ids held for batches that will never commit (a pass that ended early). */
  reset(): void {
    this.#pending.clear();
  }

  get held(): number {
    return this.#pending.size;
  }
}
