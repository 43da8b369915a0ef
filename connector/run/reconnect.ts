import { setTimeout as delay } from 'node:timers/promises';

/** The wait between attempts to reach the state database, at start and after a lost session alike: 1 s, doubling to 30 s. */
export const reconnectDelays = { firstMs: 1_000, maxMs: 30_000 } as const;

export interface UntilReachableOptions {
  readonly signal: AbortSignal;
  /** Whether a failure is a matter of time (else it is thrown at once). */
  readonly retryable: (error: unknown) => boolean;
  /** Each failed attempt that is tried again, before the wait. */
  readonly onFailure: (error: unknown, attempt: number, retryInMs: number) => void;
}

/**
 * `attempt` until it succeeds: the one loop that reaches the state database, when a run opens it (at boot it often
 * comes up after the workers) and when a lost session is reconnected. A wait that the stop interrupts rejects.
 */
export async function untilReachable<T>(attempt: () => Promise<T>, options: UntilReachableOptions): Promise<T> {
  let delayMs: number = reconnectDelays.firstMs;
  for (let count = 1; ; count += 1) {
    try {
      return await attempt();
    } catch (error) {
      if (!options.retryable(error) || options.signal.aborted) throw error;
      options.onFailure(error, count, delayMs);
      await delay(delayMs, undefined, { signal: options.signal });
      delayMs = Math.min(delayMs * 2, reconnectDelays.maxMs);
    }
  }
}
