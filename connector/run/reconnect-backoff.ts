import { setTimeout as delay } from 'node:timers/promises';

/**
 * The wait between attempts to reach the state database, at start and after a lost session alike: 1 s, doubling to
 * 30 s, and 1 s again once it answers. `wait` rejects with the signal's reason when the run stops.
 */
export class ReconnectBackoff {
  static readonly firstMs = 1_000;
  static readonly maxMs = 30_000;
  #delayMs = ReconnectBackoff.firstMs;

  /** What the next `wait` waits. */
  get delayMs(): number {
    return this.#delayMs;
  }

  async wait(signal: AbortSignal): Promise<void> {
    await delay(this.#delayMs, undefined, { signal });
    this.#delayMs = Math.min(this.#delayMs * 2, ReconnectBackoff.maxMs);
  }

  reset(): void {
    this.#delayMs = ReconnectBackoff.firstMs;
  }
}
