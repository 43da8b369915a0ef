/**
 * Ordered acknowledgements for one pass of one content type. Blobs are fetched concurrently and acknowledged as
 * their batches are committed; the checkpoint may only move to the contentCreated of the oldest blob listed but
 * not yet acknowledged, never past the end of what has been completely listed (pages are not promised to be in
 * contentCreated order), and never past the ceiling (server now less the safety lag). It never moves back.
 */
import type { ContentBlob } from './activity-api.ts';

export class CheckpointTracker {
  #checkpoint: number | undefined;
  #listedUpTo: number | undefined;
  readonly #pending = new Map<string, number>();

  constructor(checkpoint: number | undefined) {
    this.#checkpoint = checkpoint;
  }

  listed(blob: ContentBlob): void {
    const created = Date.parse(blob.contentCreated);
    // One that cannot be placed in time (the lister places them; this is the last guard) holds the checkpoint still.
    this.#pending.set(blob.contentId, Number.isFinite(created) ? created : Number.NEGATIVE_INFINITY);
  }

  /** Every page of the window ending here has been listed. */
  windowListed(end: Date): void {
    this.#listedUpTo = Math.max(this.#listedUpTo ?? 0, end.getTime());
  }

  acknowledged(contentId: string): void {
    this.#pending.delete(contentId);
  }

  get checkpoint(): number | undefined {
    return this.#checkpoint;
  }

  /** Moves the checkpoint as far as the acknowledgements allow; returns it. */
  advance(ceilingMs: number): number | undefined {
    if (this.#listedUpTo === undefined) return this.#checkpoint;
    let candidate = Math.min(this.#listedUpTo, ceilingMs);
    for (const created of this.#pending.values()) if (created < candidate) candidate = created;
    if (!Number.isFinite(candidate)) return this.#checkpoint;
    if (this.#checkpoint === undefined || candidate > this.#checkpoint) this.#checkpoint = candidate;
    return this.#checkpoint;
  }
}
