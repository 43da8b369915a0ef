import type { RetryPolicyOptions } from '../http/retry.ts';

/**
 * How the state database is reached, when a run opens it (at boot it often comes up after the workers) and when a
 * lost session is reconnected: `retry` with this policy, for as long as it takes, waiting 1 s, doubling to 30 s.
 */
export const reconnectPolicy: RetryPolicyOptions = { maxAttempts: Number.POSITIVE_INFINITY, baseDelayMs: 1_000, maxDelayMs: 30_000, jitter: 'none' };
