import { afterAll, describe, expect, it } from 'vitest';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Agent } from 'undici';
import { ActivityClient } from '../../../connector/api/activity-client.ts';
import { activityError } from '../../../connector/api/af-errors.ts';
import { RequestBudget } from '../../../connector/api/request-budget.ts';
import { retryAfterMs, retryDelayMs } from '../../../connector/api/retry-policy.ts';
import { createTestPki } from '../../emulator/tls.ts';

const pki = await createTestPki();
type Handler = (url: URL, respond: (status: number, body: string, headers?: Record<string, string>) => void, destroy: () => void) => void;
let handler: Handler = (_url, respond) => respond(200, '[]');
const seen: URL[] = [];
let inFlight = 0;
let peak = 0;
const server = createServer({ cert: pki.server.certPem, key: pki.server.keyPem }, (req, res) => {
  const url = new URL(req.url ?? '/', 'https://127.0.0.1');
  seen.push(url);
  inFlight += 1;
  peak = Math.max(peak, inFlight);
  res.on('close', () => { inFlight -= 1; });
  handler(url, (status, body, headers = {}) => { res.writeHead(status, { 'content-type': 'application/json', date: new Date(Date.now() + 90_000).toUTCString(), ...headers }); res.end(body); }, () => { res.writeHead(200, { 'content-length': '1000' }); res.write('[{"Id":"a"'); res.socket?.destroy(); });
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const root = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
const agent = new Agent({ connect: { ca: pki.caCertPem } });
afterAll(async () => { await agent.close(); server.close(); });

let invalidations = 0;
function client(options: { maxInFlight?: number } = {}) {
  return new ActivityClient({
    apiRoot: root, tenantId: 't-1', publisherId: 'pub-1', dispatcher: agent,
    tokens: { getToken: async () => 'token', invalidate: () => { invalidations += 1; } },
    retry: { maxAttempts: 4, baseDelayMs: 1, maxDelayMs: 5 }, requestsPerMinute: 600_000, maxInFlight: options.maxInFlight ?? 8,
  });
}
const blob = (id: string) => ({ contentType: 'Audit.General' as const, contentId: id, contentUri: `${root}/api/v1.0/t-1/activity/feed/audit/${id}`, contentCreated: '2026-11-25T00:00:00.000Z', contentExpiration: '2026-12-02T00:00:00.000Z' });

describe('ActivityClient', () => {
  it('follows NextPageUri and NextPageUrl to the end and sends PublisherIdentifier on every call', async () => {
    seen.length = 0;
    handler = (url, respond) => {
      const page = Number(url.searchParams.get('page') ?? '0');
      const next = new URL(url.toString().replace('https://127.0.0.1', root));
      next.searchParams.set('page', String(page + 1));
      next.searchParams.delete('PublisherIdentifier');
      respond(200, JSON.stringify([blob(`b${page}`)]), page < 3 ? { [page % 2 ? 'NextPageUrl' : 'NextPageUri']: next.toString() } : {});
    };
    const pages = [];
    for await (const page of client().listContent('Audit.General', { start: new Date('2026-11-24T00:00:00Z'), end: new Date('2026-11-25T00:00:00Z') })) pages.push(...page);
    expect(pages.map((b) => b.contentId)).toEqual(['b0', 'b1', 'b2', 'b3']);
    expect(seen.every((u) => u.searchParams.get('PublisherIdentifier') === 'pub-1')).toBe(true);
    expect(seen[0]!.searchParams.get('startTime')).toBe('2026-11-24T00:00:00');
  });

  it('retries AF429 sent as HTTP 403, honouring Retry-After, and learns the clock skew from Date', async () => {
    let calls = 0;
    handler = (_url, respond) => { calls += 1; if (calls === 1) respond(403, '{"error":{"code":"AF429","message":"Too many requests."}}', { 'retry-after': '0' }); else respond(200, '[]'); };
    const api = client();
    await expect(api.listSubscriptions()).resolves.toEqual([]);
    expect(calls).toBe(2);
    expect(api.clockSkewMs).toBeGreaterThan(80_000);
  });

  it('retries 5xx and bodies cut mid-stream, then gives up with a retryable error after bounded attempts', async () => {
    let calls = 0;
    handler = (_url, respond, destroy) => { calls += 1; if (calls === 1) destroy(); else if (calls === 2) respond(500, '{"error":{"code":"AF50000","message":"x"}}'); else respond(200, '[{"Id":"r1"}]'); };
    await expect(client().fetchContent(blob('x'))).resolves.toMatchObject({ records: [{ Id: 'r1' }] });
    calls = 0;
    handler = (_url, respond) => { calls += 1; respond(503, 'Service Unavailable'); };
    await expect(client().fetchContent(blob('x'))).rejects.toMatchObject({ code: 'HTTP503', retryable: true });
    expect(calls).toBe(4);
  });

  it('does not retry permanent errors, and treats AF20024 on start as already enabled', async () => {
    let calls = 0;
    handler = (_url, respond) => { calls += 1; respond(400, '{"error":{"code":"AF20024","message":"The subscription is already enabled. No property change."}}'); };
    await expect(client().startSubscription('Audit.General')).resolves.toMatchObject({ status: 'enabled' });
    handler = (_url, respond) => { calls += 1; respond(400, '{"error":{"code":"AF20051","message":"expired"}}'); };
    calls = 0;
    await expect(client().fetchContent(blob('old'))).rejects.toMatchObject({ code: 'AF20051' });
    expect(calls).toBe(1);
  });

  it('refreshes the token once on 401 and then succeeds', async () => {
    let calls = 0;
    invalidations = 0;
    handler = (_url, respond) => { calls += 1; if (calls === 1) respond(401, '{"Message":"Authorization has been denied for this request."}'); else respond(200, '[]'); };
    await client().listSubscriptions();
    expect(invalidations).toBe(1);
  });

  it('never has more requests in flight than its limit', async () => {
    peak = 0;
    handler = (_url, respond) => setTimeout(() => respond(200, '[{"Id":"x"}]'), 20);
    const api = client({ maxInFlight: 3 });
    await Promise.all(Array.from({ length: 20 }, (_, i) => api.fetchContent(blob(`c${i}`))));
    expect(peak).toBeLessThanOrEqual(3);
    expect(peak).toBeGreaterThan(1);
  });
});

describe('error mapping and retry policy', () => {
  it('maps AF codes to meaning, fix and retryability by code, not status', () => {
    expect(activityError(403, '{"error":{"code":"AF429","message":"x"}}')).toMatchObject({ code: 'AF429', retryable: true });
    expect(activityError(401, '{"error":{"code":"AF10001","message":"x"}}').toLine()).toMatch(/^AF10001: the token lacks the permission.*Fix: grant admin consent/);
    expect(activityError(400, '{"error":{"code":"AF20022","message":"x"}}')).toMatchObject({ code: 'AF20022', retryable: false });
    expect(activityError(400, '{"error":{"code":"StartSubscription [CorrId=1]","message":"x] failed. Exception: Microsoft.Office.Compliance.Audit.DataServiceException: Tenant 1 does not exist."}}').code).toBe('AUDIT_LOG_DISABLED');
  });

  it('reads Retry-After as seconds or an HTTP date, and backs off with bounded full jitter otherwise', () => {
    expect(retryAfterMs('7')).toBe(7000);
    expect(retryAfterMs(new Date(Date.now() + 3000).toUTCString())).toBeGreaterThan(1000);
    expect(retryAfterMs(undefined)).toBeUndefined();
    const policy = { maxAttempts: 8, baseDelayMs: 100, maxDelayMs: 1000, random: () => 0.999 };
    expect(retryDelayMs(1, policy, undefined)).toBeLessThan(100);
    expect(retryDelayMs(10, policy, undefined)).toBeLessThan(1000);
    expect(retryDelayMs(1, policy, 4000)).toBe(4000);
  });

  it('budgets requests per minute: a burst beyond the bucket waits for refill', async () => {
    let t = 0;
    const budget = new RequestBudget({ requestsPerMinute: 60, maxInFlight: 10, now: () => t });
    const releases = [];
    for (let i = 0; i < 1; i += 1) releases.push(await budget.acquire());
    let granted = false;
    const waiting = budget.acquire().then((release) => { granted = true; return release; });
    await new Promise((r) => setImmediate(r));
    expect(granted).toBe(false);
    t += 1000;
    (await waiting)();
    expect(granted).toBe(true);
  });
});
