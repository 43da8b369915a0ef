/**
 * Remembers recently delivered record Ids (the service delivers some records in more than one blob), bounded by
 * age (of the blob that carried them) and by count, so memory and state stay bounded whatever the backlog.
 */
export class Deduplicator {
  readonly #seen = new Map<string, number>();
  readonly #maxIds: number;

  constructor(entries: ReadonlyArray<readonly [string, number]> = [], options: { maxIds?: number } = {}) {
    this.#maxIds = options.maxIds ?? 200_000;
    for (const [id, at] of entries) this.#seen.set(id, at);
  }

  has(id: string): boolean {
    return this.#seen.has(id);
  }

  add(id: string, blobCreatedMs: number): void {
    this.#seen.delete(id);
    this.#seen.set(id, blobCreatedMs);
    if (this.#seen.size > this.#maxIds) {
      const oldest = this.#seen.keys().next().value;
      if (oldest !== undefined) this.#seen.delete(oldest);
    }
  }

  /** Forgets Ids of blobs created before `beforeMs`. */
  prune(beforeMs: number): void {
    for (const [id, at] of this.#seen) if (at < beforeMs) this.#seen.delete(id);
  }

  get size(): number {
    return this.#seen.size;
  }

  entries(): Array<[string, number]> {
    return [...this.#seen];
  }
}
