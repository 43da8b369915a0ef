import { ConnectorError } from '../core/errors.ts';

/**
 * When and how long to wait before repeating a failed call. Whether to retry follows the error's `retryable`
 * flag, which the AF table and the transport mapping set from the service's code (AF429, AF5000x, 5xx,
 * resets, cut bodies), never from the HTTP status alone. A throttled call (AF429, Graph's 429) is not a failure:
 * it is repeated for as long as it takes, and only other errors use up `maxAttempts`.
 */
export interface RetryPolicyOptions {
  /** Attempts in all, the first included. */
  readonly maxAttempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /** Upper bound for a server-requested Retry-After (a wild value must not stall the connector for hours). */
  readonly maxRetryAfterMs?: number;
  /**
   * How long a throttled call may keep waiting before its AF429 is the answer: unbounded for collection (it waits
   * for as long as it takes), bounded for a person's question (`test`, `status`), who wants an answer now.
   */
  readonly maxThrottledMs?: number;
  readonly random?: () => number;
}

export const defaultRetryPolicy: RetryPolicyOptions = { maxAttempts: 8, baseDelayMs: 1000, maxDelayMs: 60_000, maxRetryAfterMs: 5 * 60_000 };

/** Retry-After as delta seconds or an HTTP date (measured against the server's Date when known); undefined when absent or unreadable. */
export function retryAfterMs(header: string | string[] | undefined, serverNowMs: number = Date.now()): number | undefined {
  const value = (Array.isArray(header) ? header[0] : header)?.trim();
  if (value === undefined || value === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(value)) return Math.round(Number(value) * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - serverNowMs);
}

/** How much of a server-requested Retry-After the policy honours (capped by maxRetryAfterMs); undefined when none was given. */
export function honouredRetryAfterMs(retryAfter: number | undefined, policy: RetryPolicyOptions): number | undefined {
  return retryAfter === undefined ? undefined : Math.min(retryAfter, policy.maxRetryAfterMs ?? defaultRetryPolicy.maxRetryAfterMs!);
}

/** The wait before retry number `retry` (1-based): Retry-After when given, else exponential backoff with full jitter. */
export function retryDelayMs(retry: number, policy: RetryPolicyOptions, retryAfter: number | undefined): number {
  const asked = honouredRetryAfterMs(retryAfter, policy);
  if (asked !== undefined) return asked;
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(retry - 1, 30));
  return Math.floor((policy.random ?? Math.random)() * ceiling);
}

export function isRetryable(error: unknown): boolean {
  return error instanceof ConnectorError && error.retryable;
}

export interface RetryObserver {
  /** `attempt`: failed attempts so far (throttled ones not counted); `throttled`: the call is waiting out a spent quota. */
  (event: { error: ConnectorError; attempt: number; delayMs: number; throttled: boolean }): void;
}


/**
 * Runs `operation` until it succeeds, fails with a non-retryable error, or uses up `maxAttempts` on errors other
 * than throttling; the last error is thrown as is (still retryable, so a caller such as the collector can try
 * again on its next pass). Throttled calls wait (Retry-After, else a growing jittered pause) and go again until
 * the signal stops them.
 */
export async function withRetry<T>(
  operation: (attempt: number) => Promise<T>,
  policy: RetryPolicyOptions,
  options: { abortSignal?: AbortSignal | undefined; onRetry?: RetryObserver } = {},
): Promise<T> {
  let failures = 0;
  let throttles = 0;
  let throttledSince: number | undefined;
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await operation(attempt);
    } catch (error) {
      if (options.abortSignal?.aborted || !isRetryable(error)) throw error;
      const connectorError = error as ConnectorError & { retryAfterMs?: number };
      const throttled = connectorError.throttled;
      if (throttled) throttles += 1;
      else failures += 1;
      if (!throttled && failures >= policy.maxAttempts) throw error;
      throttledSince ??= throttled ? performance.now() : undefined;
      if (throttled && policy.maxThrottledMs !== undefined && performance.now() - throttledSince! >= policy.maxThrottledMs) throw error;
      const delayMs = retryDelayMs(throttled ? throttles : failures, policy, connectorError.retryAfterMs);
      options.onRetry?.({ error: connectorError, attempt: failures, delayMs, throttled });
      await sleep(delayMs, options.abortSignal);
    }
  }
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => { clearTimeout(timer); reject(signal!.reason); };
    const timer = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
