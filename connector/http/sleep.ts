import { setTimeout as wait } from 'node:timers/promises';

/** Waits `ms`; a signal that fires rejects with its own reason (what callers test for), not the timer's AbortError. */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await wait(ms, undefined, signal ? { signal } : undefined);
  } catch (error) {
    throw signal?.aborted ? signal.reason : error;
  }
}
