import { describe, expect, it, vi } from 'vitest';
import { activityError } from '../../../../connector/sources/activity-api/af-errors.ts';
import { retry, retryAfterMs, retryDelayMs } from '../../../../connector/http/retry.ts';
import { graphError } from '../../../../connector/sources/graph/graph-errors.ts';
import { transportError } from '../../../../connector/http/transport-errors.ts';
import { identityError } from '../../../../connector/auth/aadsts-errors.ts';
import { describeFailure } from '../../../../connector/cli/exit-codes.ts';
import { ConfigError } from '../../../../connector/core/errors.ts';

const af = (code: string, message = 'x') => JSON.stringify({ error: { code, message } });

describe('AF error table', () => {
  it('decides retryability by the AF code, not the HTTP status', () => {
    expect(activityError(403, af('AF429'))).toMatchObject({ code: 'AF429', retryable: true });
    expect(activityError(400, af('AF50006'))).toMatchObject({ code: 'AF50006', retryable: true });
    expect(activityError(500, af('AF20022'))).toMatchObject({ code: 'AF20022', retryable: false });
    expect(activityError(502, '<html>Bad gateway</html>')).toMatchObject({ code: 'HTTP502', retryable: true });
  });

  it.each([
    ['AF10001', 401, /^AF10001: the token lacks the permission.*Fix: grant admin consent/],
    ['AF20010', 400, /^AF20010: the tenant id in the URL is not the tenant the token was issued for\. Fix: .*pulumi stack output tenantId/],
    ['AF20022', 400, /^AF20022: no subscription exists for this content type\. Fix: start it/],
    ['AF20023', 400, /^AF20023: the subscription was disabled by an administrator/],
    ['AF20051', 400, /^AF20051: the content expired/],
    ['AF20055', 400, /^AF20055: the time window was rejected.*Fix: check the machine clock/],
    ['AF429', 429, /^AF429: the tenant is throttled.*Fix: none needed: the connector slows to the rate the service takes/],
  ])('explains %s in one line with its meaning and fix', (code, status, line) => {
    expect(activityError(status, af(code)).toLine()).toMatch(line);
  });

  it('recognises "Tenant <id> does not exist" as unified audit logging turned off', () => {
    const body = af('StartSubscription [CorrId=1][TenantId=t,ContentType=Audit.General]', 'x] failed. Exception: Microsoft.Office.Compliance.Audit.DataServiceException: Tenant 2f0c3a11-6c55-4d8a-9a1e-0d7d2c1b4e77 does not exist.\r\n   at Microsoft.Office...');
    const error = activityError(400, body);
    expect(error.code).toBe('AUDIT_LOG_DISABLED');
    expect(error.toLine()).toMatch(/Fix: turn on audit log search: Microsoft Purview compliance portal > Audit/);
    expect(error.toLine()).not.toMatch(/\n|   at /);
  });

  it('keeps an unknown code and the first line of the service message', () => {
    expect(activityError(400, af('AF20099', 'Something new.\r\nstack')).toLine()).toBe('AF20099: the API answered HTTP 400: AF20099 Something new.');
  });
});

describe('AADSTS table', () => {
  it.each([
    ['90002', /^AADSTS90002: the tenant was not found in this cloud\. Fix: set tenantId/],
    ['700016', /^AADSTS700016: the application \(client id\) was not found in this tenant/],
    ['7000215', /^AADSTS7000215: the client secret is invalid: often the secret ID was pasted instead of its value\. Fix: .*pulumi stack output --json --show-secrets/],
    ['7000222', /^AADSTS7000222: the client secret has expired\. Fix: rotate it: `npm run pulumi -- config set secretRotation <n\+1>`/],
    ['1002012', /^AADSTS1002012: the requested scope is not valid.*Fix: set apiRoot/],
  ])('explains AADSTS%s', (code, line) => {
    expect(identityError(code, `AADSTS${code}: whatever`).toLine()).toMatch(line);
  });

  it('keeps the first sentence of an unknown AADSTS error without trace ids', () => {
    expect(identityError('12345', 'AADSTS12345: Something odd. Trace ID: abc Correlation ID: def').toLine()).toMatch(/^AADSTS12345: the identity platform refused the token request: Something odd\.\s+Fix:/);
  });
});

describe('exit codes', () => {
  it('maps each kind of failure to its exit code in one line', () => {
    expect(describeFailure(new ConfigError('tenantId', 'missing'))).toEqual({ line: 'error: CONFIG_INVALID: tenantId: missing.', exitCode: 2 });
    expect(describeFailure(identityError('7000215', '')).exitCode).toBe(3);
    expect(describeFailure(activityError(401, '{"Message":"denied"}')).exitCode).toBe(3);
    expect(describeFailure(activityError(401, af('AF10001'))).exitCode).toBe(4);
    expect(describeFailure(activityError(429, af('AF429'))).exitCode).toBe(4);
    expect(describeFailure(transportError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }), 'https://127.0.0.1:1/x')).exitCode).toBe(5);
    expect(describeFailure(new TypeError('boom\n    at x'))).toEqual({ line: 'internal error: boom', exitCode: 1 });
  });
});

describe('retry timing', () => {
  it('reads Retry-After as seconds or an HTTP date against the server clock', () => {
    expect(retryAfterMs('7')).toBe(7000);
    expect(retryAfterMs('Wed, 25 Nov 2026 12:00:30 GMT', Date.parse('Wed, 25 Nov 2026 12:00:00 GMT'))).toBe(30_000);
    expect(retryAfterMs(undefined)).toBeUndefined();
    expect(retryAfterMs('soon')).toBeUndefined();
  });

  it('uses full jitter under an exponential ceiling, and caps a wild Retry-After', () => {
    const policy = { maxAttempts: 8, baseDelayMs: 100, maxDelayMs: 1000, maxRetryAfterMs: 5000 };
    expect(retryDelayMs(1, { ...policy, random: () => 0.999 }, undefined)).toBe(99);
    expect(retryDelayMs(3, { ...policy, random: () => 0.5 }, undefined)).toBe(200);
    expect(retryDelayMs(40, { ...policy, random: () => 0.999 }, undefined)).toBe(999);
    expect(retryDelayMs(1, { ...policy, random: () => 0 }, undefined)).toBe(0);
    expect(retryDelayMs(1, policy, 4000)).toBe(4000);
    expect(retryDelayMs(1, policy, 86_400_000)).toBe(5000);
  });
});

describe('throttling is never a failure', () => {
  const policy = { maxAttempts: 3, baseDelayMs: 100, maxDelayMs: 1000, random: () => 0.5 };

  it('marks AF429 (as 429 or 403) and Graph\'s 429 as throttled, and nothing else', () => {
    expect(activityError(429, af('AF429')).throttled).toBe(true);
    expect(activityError(403, af('AF429')).throttled).toBe(true);
    expect(activityError(429, 'Too Many Requests').throttled).toBe(true);
    expect(activityError(500, af('AF50000')).throttled).toBe(false);
    expect(activityError(403, af('AF10001')).throttled).toBe(false);
    expect(graphError(429, '{}', 'issues', 2000).throttled).toBe(true);
    expect(graphError(503, '{}', 'issues', 2000).throttled).toBe(false);
  });

  it('repeats a throttled call as long as it takes: only other errors use up the attempts', async () => {
    vi.useFakeTimers({ fakeNodeBuiltins: true });
    try {
      let calls = 0;
      const observed: Array<{ attempt: number; throttled: boolean }> = [];
      const result = retry(async () => {
        calls += 1;
        if (calls <= 20) throw activityError(calls % 2 === 0 ? 403 : 429, af('AF429'));
        if (calls <= 22) throw activityError(500, af('AF50000'));
        return 'delivered';
      }, { policy, onRetry: ({ attempt, throttled }) => observed.push({ attempt, throttled }) });
      await vi.advanceTimersByTimeAsync(60_000);
      await expect(result).resolves.toBe('delivered');
      expect(calls).toBe(23);
      expect(observed.filter((event) => event.throttled)).toHaveLength(20);
      expect(observed.at(-1)).toEqual({ attempt: 2, throttled: false });

      let failing = 0;
      const failed = retry(async () => { failing += 1; throw activityError(500, af('AF50000')); }, { policy }).catch((error: unknown) => error);
      await vi.advanceTimersByTimeAsync(60_000);
      expect(await failed).toMatchObject({ code: 'AF50000' });
      expect(failing).toBe(3);
    } finally {
      vi.useRealTimers();
    }
  });

  it('answers AF429 after maxThrottledMs for a person\'s question (test, status), who wants an answer now', async () => {
    let calls = 0;
    const started = performance.now();
    const error = await retry(async () => { calls += 1; throw activityError(429, af('AF429')); }, { policy: { ...policy, baseDelayMs: 5, maxDelayMs: 10, maxThrottledMs: 100 } }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'AF429', throttled: true });
    expect(performance.now() - started).toBeGreaterThanOrEqual(100);
    expect(calls).toBeGreaterThan(3); // more than maxAttempts: throttling is not counted as failed attempts
  });

  it('stops waiting out a throttled call when the run stops', async () => {
    const controller = new AbortController();
    let calls = 0;
    const waiting = retry(async () => { calls += 1; throw activityError(429, af('AF429')); }, { policy, signal: controller.signal });
    await vi.waitFor(() => expect(calls).toBeGreaterThan(0));
    controller.abort(new Error('stopped'));
    await expect(waiting).rejects.toThrow('stopped');
  });
});
