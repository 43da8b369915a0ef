import { ConnectorError } from '../core/errors.ts';
import { sleep } from './sleep.ts';

/**
 * When and how long to wait before repeating a failed call. Whether to repeat it is the destination's judge's call
 * (see `RetryJudge`); a throttled call (AF429, Graph's 429) is not a failure: it is repeated for as long as it takes,
 * and only other errors use up `maxAttempts`.
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
  /** `full` (the default): anywhere below the backoff ceiling; `equal`: its upper half; `none`: the ceiling itself. */
  readonly jitter?: 'full' | 'equal' | 'none';
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

/** The wait before retry number `retry` (1-based): Retry-After when given, else exponential backoff with the policy's jitter. */
export function retryDelayMs(retry: number, policy: RetryPolicyOptions, retryAfter: number | undefined): number {
  const asked = honouredRetryAfterMs(retryAfter, policy);
  if (asked !== undefined) return asked;
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(retry - 1, 30));
  if (policy.jitter === 'none') return ceiling;
  const spread = (policy.random ?? Math.random)();
  return policy.jitter === 'equal' ? Math.round(ceiling / 2 + spread * (ceiling / 2)) : Math.floor(spread * ceiling);
}

/**
 * A destination's reading of one failure: repeat it or not, whether it is throttling (never a failed attempt: only
 * `maxThrottledMs` bounds it), and the wait the server asked for.
 */
export type RetryJudge = (error: unknown) => { readonly retry: boolean; readonly throttled?: boolean; readonly retryAfterMs?: number | undefined };

/**
 * The judgement the error carries: the AF table, Graph's codes, the transport mapping and the sinks' answer judges
 * set `retryable` and `throttled` (never from the HTTP status alone) when they build the error.
 */
export const judgeByError: RetryJudge = (error) => error instanceof ConnectorError
  ? { retry: error.retryable, throttled: error.throttled, retryAfterMs: (error as { retryAfterMs?: number }).retryAfterMs }
  : { retry: false };

export interface RetryOptions {
  readonly policy: RetryPolicyOptions;
  /** Default: `judgeByError`. */
  readonly judge?: RetryJudge;
  readonly signal?: AbortSignal | undefined;
  /** `attempt`: failed attempts so far (throttled ones not counted); `calls`: calls made so far. */
  readonly onRetry?: (event: { error: ConnectorError; attempt: number; calls: number; delayMs: number; throttled: boolean }) => void;
}

/**
 * Runs `operation` until it succeeds, the judge calls its failure final, or it uses up `maxAttempts` on failures other
 * than throttling; the last error is thrown as is (still retryable, so a caller such as the collector can try again on
 * its next pass). Throttled calls wait (Retry-After, else a growing jittered pause) and go again until the signal stops
 * them.
 */
export async function retry<T>(operation: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const { policy, judge = judgeByError, signal } = options;
  let failures = 0;
  let throttles = 0;
  let throttledSince: number | undefined;
  for (let calls = 1; ; calls += 1) {
    try {
      return await operation(calls);
    } catch (error) {
      const verdict = judge(error);
      if (signal?.aborted || !verdict.retry) throw error;
      const throttled = verdict.throttled === true;
      if (throttled) throttles += 1;
      else failures += 1;
      if (!throttled && failures >= policy.maxAttempts) throw error;
      throttledSince ??= throttled ? performance.now() : undefined;
      if (throttled && policy.maxThrottledMs !== undefined && performance.now() - throttledSince! >= policy.maxThrottledMs) throw error;
      const delayMs = retryDelayMs(throttled ? throttles : failures, policy, verdict.retryAfterMs);
      options.onRetry?.({ error: error as ConnectorError, attempt: failures, calls, delayMs, throttled });
      await sleep(delayMs, signal);
    }
  }
}
