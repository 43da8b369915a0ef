import { describe, expect, it } from 'vitest';
import { ConnectorError } from '../../../connector/core/errors.ts';
import { retry, retryDelayMs } from '../../../connector/http/retry.ts';
import { sleep } from '../../../connector/http/sleep.ts';

describe('retry and sleep', () => {
  it('sleep rejects with the signal\'s own reason, not the timer\'s AbortError', async () => {
    const reason = new Error('stopped');
    const controller = new AbortController();
    const waiting = sleep(60_000, controller.signal);
    controller.abort(reason);
    await expect(waiting).rejects.toBe(reason);
    await expect(sleep(10, AbortSignal.abort(reason))).rejects.toBe(reason);
  });

  it('spreads the wait as the policy says: anywhere below the ceiling, its upper half, or the ceiling itself', () => {
    const policy = { maxAttempts: 3, baseDelayMs: 100, maxDelayMs: 1000, random: () => 0.5 };
    expect(retryDelayMs(3, policy, undefined)).toBe(200);
    expect(retryDelayMs(3, { ...policy, jitter: 'equal' }, undefined)).toBe(300);
    expect(retryDelayMs(3, { ...policy, jitter: 'none' }, undefined)).toBe(400);
    expect(retryDelayMs(9, { ...policy, jitter: 'none' }, undefined)).toBe(1000);
  });

  it('asks the destination\'s judge: a final verdict ends the loop with the error as it is', async () => {
    let calls = 0;
    const refusal = new ConnectorError('HEC4', 'the HEC token is invalid');
    const result = retry(async () => { calls += 1; throw refusal; }, {
      policy: { maxAttempts: Number.POSITIVE_INFINITY, baseDelayMs: 1, maxDelayMs: 1 },
      judge: () => ({ retry: calls < 3 }),
    });
    await expect(result).rejects.toBe(refusal);
    expect(calls).toBe(3);
  });
});
