import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { createHook } from 'node:async_hooks';
import { createServer } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent } from 'undici';
import { ActivityClient, apiTime } from '../../../../connector/sources/activity-api/activity-client.ts';
import { ActivityApiError } from '../../../../connector/sources/activity-api/af-errors.ts';
import { TransportError } from '../../../../connector/http/transport-errors.ts';
import { createTestPki } from '../../../emulator/tls.ts';
import { defaultRunSettings } from '../../../../connector/config/settings.ts';

/** The client's limits as a run configures them (the settings table's defaults). */
const clientLimits = { requestsPerMinute: defaultRunSettings.requestsPerMinute, maxInFlight: defaultRunSettings.maxInFlight, maxBlobBytes: defaultRunSettings.maxBlobBytes, requestDeadlineMs: defaultRunSettings.requestDeadlineSeconds * 1000 };

const pki = await createTestPki();
type Reply = (status: number, body: string, headers?: Record<string, string>) => void;
interface Exchange { url: URL; method: string; authorization: string | undefined; reply: Reply; cut: (body: string) => void; res: ServerResponse; req: IncomingMessage }
let handler: (exchange: Exchange) => void = ({ reply }) => reply(200, '[]');
let serverSkewMs = 0;
const seen: Array<{ url: URL; method: string; authorization: string | undefined }> = [];
let inFlight = 0;
let peak = 0;
const server = createServer({ cert: pki.server.certPem, key: pki.server.keyPem }, (req, res) => {
  const url = new URL(req.url ?? '/', 'https://127.0.0.1');
  seen.push({ url, method: req.method ?? 'GET', authorization: req.headers.authorization });
  inFlight += 1;
  peak = Math.max(peak, inFlight);
  res.on('close', () => { inFlight -= 1; });
  const date = new Date(Date.now() + serverSkewMs).toUTCString();
  handler({
    url, method: req.method ?? 'GET', authorization: req.headers.authorization, req, res,
    reply: (status, body, headers = {}) => { res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', date, ...headers }); res.end(body); },
    // Announces the full length, sends half, then drops the connection: a body cut mid-stream.
    cut: (body) => { res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length), date }); res.write(body.slice(0, body.length / 2)); res.socket?.destroy(); },
  });
});
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
const root = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
const agent = new Agent({ connect: { ca: pki.caCertPem } });
afterAll(async () => { await agent.close(); server.close(); });

const tenant = '2f0c3a11-6c55-4d8a-9a1e-0d7d2c1b4e77';
const publisher = '7d0c3a11-6c55-4d8a-9a1e-0d7d2c1b4e77';
const feed = `${root}/api/v1.0/${tenant}/activity/feed`;
let invalidated: Array<string | undefined> = [];
let tokenNumber = 0;

function client(options: { maxInFlight?: number; maxAttempts?: number; random?: () => number; requestsPerMinute?: number; maxBlobBytes?: number; requestDeadlineMs?: number } = {}) {
  return new ActivityClient({ ...clientLimits,
    apiRoot: root, tenantId: tenant, publisherId: publisher, dispatcher: agent,
    tokens: { getToken: async () => `token-${tokenNumber}`, invalidate: (token) => { invalidated.push(token); tokenNumber += 1; } },
    retry: { maxAttempts: options.maxAttempts ?? 4, baseDelayMs: 1, maxDelayMs: 5, maxRetryAfterMs: 50, ...(options.random ? { random: options.random } : {}) },
    requestsPerMinute: options.requestsPerMinute ?? 600_000, maxInFlight: options.maxInFlight ?? 8,
    ...(options.maxBlobBytes ? { maxBlobBytes: options.maxBlobBytes } : {}),
    ...(options.requestDeadlineMs ? { requestDeadlineMs: options.requestDeadlineMs } : {}),
  });
}
const blob = (id: string, base = root) => ({ contentType: 'Audit.General' as const, contentId: id, contentUri: `${base}/api/v1.0/${tenant}/activity/feed/audit/${id}`, contentCreated: '2026-11-25T00:00:00.000Z', contentExpiration: '2026-12-02T00:00:00.000Z' });
const lastDay = () => ({ start: new Date(Date.now() - 24 * 3_600_000), end: new Date() });
const af = (code: string, message = 'x') => JSON.stringify({ error: { code, message } });

beforeEach(() => {
  seen.length = 0;
  serverSkewMs = 0;
  invalidated = [];
  tokenNumber = 0;
});

describe('ActivityClient paging and identification', () => {
  it('follows NextPageUri and NextPageUrl verbatim to the end', async () => {
    handler = ({ url, reply }) => {
      const page = Number(url.searchParams.get('page') ?? '0');
      // The service's own next-page link, with an unusual encoding that must not be rewritten.
      const next = `${feed}/subscriptions/content?contentType=Audit.General&startTime=${url.searchParams.get('startTime')}&endTime=${url.searchParams.get('endTime')}&nextPage=${page + 1}%2Bx&page=${page + 1}`;
      reply(200, JSON.stringify([blob(`b${page}`)]), page < 3 ? { [page % 2 ? 'NextPageUrl' : 'NextPageUri']: next } : {});
    };
    const window = { start: new Date('2026-11-24T00:00:00.250Z'), end: new Date('2026-11-25T00:00:00Z') };
    const api = new ActivityClient({ ...clientLimits, apiRoot: root, tenantId: tenant, publisherId: publisher, dispatcher: agent, tokens: { getToken: async () => 't', invalidate: () => {} }, now: () => new Date('2026-11-25T01:00:00Z') });
    const ids = [];
    for await (const page of api.listContent('Audit.General', window)) ids.push(...page.map((b) => b.contentId));
    expect(ids).toEqual(['b0', 'b1', 'b2', 'b3']);
    expect(seen).toHaveLength(4);
    expect(seen[0]!.url.searchParams.get('startTime')).toBe('2026-11-24T00:00:00');
    expect(seen[0]!.url.searchParams.get('endTime')).toBe('2026-11-25T00:00:00');
    expect(seen[1]!.url.search).toContain('nextPage=1%2Bx&page=1&PublisherIdentifier=');
  });

  it('sends PublisherIdentifier and the bearer token on every kind of call', async () => {
    handler = ({ url, reply }) => {
      if (url.pathname.endsWith('/subscriptions/start')) reply(200, JSON.stringify({ contentType: 'Audit.General', status: 'enabled', webhook: null }));
      else if (url.pathname.endsWith('/subscriptions/stop')) reply(200, '');
      else if (url.pathname.endsWith('/subscriptions/content') && !url.searchParams.has('n')) reply(200, '[]', { NextPageUri: `${feed}/subscriptions/content?contentType=Audit.General&n=2` });
      else reply(200, '[]');
    };
    const api = client();
    await api.startSubscription('Audit.General');
    await api.stopSubscription('Audit.General');
    await api.listSubscriptions();
    for await (const _page of api.listContent('Audit.General', lastDay())) { /* drain */ }
    await api.fetchContent(blob('c1'));
    expect(seen.map((s) => `${s.method} ${s.url.pathname.split('/feed/')[1]}`)).toEqual([
      'POST subscriptions/start', 'POST subscriptions/stop', 'GET subscriptions/list', 'GET subscriptions/content', 'GET subscriptions/content', 'GET audit/c1',
    ]);
    for (const call of seen) {
      expect(call.url.searchParams.getAll('PublisherIdentifier')).toEqual([publisher]);
      expect(call.authorization).toBe('Bearer token-0');
    }
  });

  it('never sends the token to a host other than the API root', async () => {
    handler = ({ reply }) => reply(200, '[]', { NextPageUri: `https://localhost:${new URL(root).port}/api/v1.0/${tenant}/activity/feed/subscriptions/content?x=1` });
    const pages = client().listContent('Audit.General', lastDay());
    const consume = async () => { for await (const _page of pages) { /* drain */ } };
    await expect(consume()).rejects.toMatchObject({ code: 'UNTRUSTED_URI' });
    seen.length = 0;
    await expect(client().fetchContent(blob('x', 'https://attacker.example'))).rejects.toMatchObject({ code: 'UNTRUSTED_URI' });
    expect(seen).toHaveLength(0);
  });

  it('refuses before sending a window the service would reject', async () => {
    const api = client();
    const list = async (start: Date, end: Date) => { for await (const _page of api.listContent('Audit.General', { start, end })) { /* drain */ } };
    const now = Date.now();
    await expect(list(new Date(now - 25 * 3_600_000), new Date(now))).rejects.toThrow(/longer than 24 hours/);
    await expect(list(new Date(now), new Date(now - 1000))).rejects.toThrow(/ends before it starts/);
    await expect(list(new Date(now - 8 * 86_400_000), new Date(now - 7.5 * 86_400_000))).rejects.toThrow(/more than 7 days before the server's time/);
    expect(seen).toHaveLength(0);
  });

  it('learns the server clock skew from the Date header and judges the 7-day rule by it', async () => {
    serverSkewMs = 3 * 3_600_000;
    handler = ({ reply }) => reply(200, '[]');
    const api = client();
    expect(api.clockSkewMs).toBe(0);
    await api.listSubscriptions();
    expect(api.clockSkewMs).toBeGreaterThan(3 * 3_600_000 - 2000);
    expect(api.clockSkewMs).toBeLessThan(3 * 3_600_000 + 2000);
    // 7 days minus 1 hour back by the local clock is 7 days plus 2 hours back by the server's.
    const start = new Date(Date.now() - 7 * 86_400_000 + 3_600_000);
    const pages = api.listContent('Audit.General', { start, end: new Date(start.getTime() + 3_600_000) });
    await expect((async () => { for await (const _page of pages) { /* drain */ } })()).rejects.toMatchObject({ code: 'WINDOW_INVALID' });
  });

  it('formats API times as YYYY-MM-DDTHH:MM:SS in UTC', () => {
    expect(apiTime(new Date('2026-03-01T07:08:09.999Z'))).toBe('2026-03-01T07:08:09');
  });
});

describe('ActivityClient retry policy', () => {
  it('retries AF429 sent as HTTP 403 and as 429, honouring Retry-After in seconds', async () => {
    let calls = 0;
    handler = ({ reply }) => {
      calls += 1;
      if (calls === 1) reply(403, af('AF429', 'Too many requests. Method=GetBlob'), { 'retry-after': '0' });
      else if (calls === 2) reply(429, af('AF429'));
      else reply(200, '[]');
    };
    await expect(client().listSubscriptions()).resolves.toEqual([]);
    expect(calls).toBe(3);
  });

  it('waits what Retry-After asks (seconds or HTTP date) before the next attempt, capped by the policy', async () => {
    const delays: number[] = [];
    let calls = 0;
    handler = ({ reply }) => {
      calls += 1;
      if (calls === 1) reply(503, af('AF50000'), { 'retry-after': '0.02' });
      else if (calls === 2) reply(503, af('AF50000'), { 'retry-after': new Date(Date.now() + serverSkewMs + 3_600_000).toUTCString() });
      else reply(200, '[]');
    };
    const api = new ActivityClient({ ...clientLimits,
      apiRoot: root, tenantId: tenant, publisherId: publisher, dispatcher: agent, tokens: { getToken: async () => 't', invalidate: () => {} },
      retry: { maxAttempts: 4, baseDelayMs: 1, maxDelayMs: 5, maxRetryAfterMs: 40 },
      telemetry: { received: () => {}, sent: () => {}, error: (e) => { delays.push(Number(/in (\d+) ms/.exec(e.message)?.[1])); } },
    });
    await api.listSubscriptions();
    expect(delays).toEqual([20, 40]);
  });

  it('backs off with full jitter when no Retry-After is given', async () => {
    const delays: number[] = [];
    handler = ({ reply }) => reply(500, af('AF50000'));
    const api = new ActivityClient({ ...clientLimits,
      apiRoot: root, tenantId: tenant, publisherId: publisher, dispatcher: agent, tokens: { getToken: async () => 't', invalidate: () => {} },
      retry: { maxAttempts: 5, baseDelayMs: 2, maxDelayMs: 10, random: () => 0.99 },
      telemetry: { received: () => {}, sent: () => {}, error: (e) => { delays.push(Number(/in (\d+) ms/.exec(e.message)?.[1])); } },
    });
    await expect(api.listSubscriptions()).rejects.toMatchObject({ code: 'AF50000', retryable: true });
    expect(delays).toEqual([1, 3, 7, 9]);
  });

  it('retries bodies cut mid-stream, truncated JSON and 5xx, then succeeds', async () => {
    let calls = 0;
    const body = JSON.stringify([{ Id: 'r1', Operation: 'UserLoggedIn' }]);
    handler = ({ reply, cut }) => {
      calls += 1;
      if (calls === 1) cut(body);
      else if (calls === 2) reply(200, body.slice(0, 12));
      else if (calls === 3) reply(503, 'Service Unavailable');
      else if (calls === 4) reply(500, af('AF50005'));
      else reply(200, body);
    };
    const content = await client({ maxAttempts: 5 }).fetchContent(blob('x'));
    expect(content.bytes).toBe(body.length);
    expect(content.records.map((r) => ({ id: r.id, bytes: r.bytes.toString() }))).toEqual([{ id: 'r1', bytes: body.slice(1, -1) }]);
    expect(calls).toBe(5);
  });

  it('hands over each record of a blob as the bytes the service sent, whatever the chunking, with its Id and CreationTime', async () => {
    const records = [
      '{"10":1,"2":2,"Id":"r1","CreationTime":"2026-11-25T10:00:00","Size":12345678901234567890,"Ratio":1.0}',
      '{"Id":"r\u0032","Name":"Caf\u00e9 \/ «é» ","Nested":{"Id":"inner"}}',
    ];
    const body = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(`[${records.join(',')}]`)]);
    handler = ({ res }) => {
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
      res.write(body.subarray(0, 50));
      res.end(body.subarray(50));
    };
    const content = await client().fetchContent(blob('x'));
    expect(content.bytes).toBe(body.length);
    expect(content.records.map((r) => ({ id: r.id, creationTime: r.creationTime }))).toEqual([{ id: 'r1', creationTime: '2026-11-25T10:00:00' }, { id: 'r2', creationTime: undefined }]);
    expect(Buffer.concat(content.records.map((r) => r.bytes)).equals(Buffer.from(records.join('')))).toBe(true);
  });

  it('refuses a content body that is not an array of records as INVALID_BODY, retried, naming the byte and not the content', async () => {
    let calls = 0;
    handler = ({ reply }) => { calls += 1; reply(200, calls === 1 ? '{"Id":"secret"}' : '[{"Id":"secret"}]<html>'); };
    const error = await client({ maxAttempts: 2 }).fetchContent(blob('x')).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'INVALID_BODY', retryable: true, message: 'the content answer was not valid JSON: data after the end of the JSON value at byte 17 of 23' });
    expect(calls).toBe(2);
  });

  it('repeats AF429 (as 403 or 429) until it passes, and gives up on other errors after the bounded number of attempts', async () => {
    let calls = 0;
    handler = ({ reply }) => { calls += 1; if (calls <= 6) reply(calls % 2 === 0 ? 403 : 429, af('AF429')); else reply(500, af('AF50000')); };
    const error = await client({ maxAttempts: 3 }).fetchContent(blob('x')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ActivityApiError);
    expect(error).toMatchObject({ code: 'AF50000', retryable: true, status: 500 });
    expect(calls).toBe(9);
    calls = 0;
    handler = ({ reply }) => { calls += 1; if (calls <= 10) reply(403, af('AF429')); else reply(200, '[]'); };
    await expect(client({ maxAttempts: 3 }).fetchContent(blob('y'))).resolves.toMatchObject({ records: [] });
    expect(calls).toBe(11);
  });

  it('does not retry permanent errors, and treats AF20024 on start as already enabled', async () => {
    let calls = 0;
    handler = ({ reply }) => { calls += 1; reply(400, af('AF20024', 'The subscription is already enabled. No property change.')); };
    await expect(client().startSubscription('Audit.General')).resolves.toEqual({ contentType: 'Audit.General', status: 'enabled', webhook: null });
    calls = 0;
    handler = ({ reply }) => { calls += 1; reply(400, af('AF20051', 'expired')); };
    await expect(client().fetchContent(blob('old'))).rejects.toMatchObject({ code: 'AF20051', retryable: false });
    expect(calls).toBe(1);
  });

  it('throws AF20022 from listing as is, for the collector to start the subscription', async () => {
    handler = ({ reply }) => reply(400, af('AF20022', 'No subscription found for the specified content type'));
    const pages = client().listContent('Audit.Exchange', lastDay());
    await expect((async () => { for await (const _page of pages) { /* drain */ } })()).rejects.toMatchObject({ code: 'AF20022', retryable: false });
  });

  it('drops the refused token and retries on 401 (twice at most), then reports UNAUTHORIZED', async () => {
    handler = ({ authorization, reply }) => (authorization === 'Bearer token-0' ? reply(401, '{"Message":"Authorization has been denied for this request."}') : reply(200, '[]'));
    await client().listSubscriptions();
    expect(invalidated).toEqual(['token-0']);
    invalidated = [];
    handler = ({ reply }) => reply(401, '{"Message":"Authorization has been denied for this request."}');
    await expect(client().listSubscriptions()).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    expect(invalidated).toEqual(['token-1', 'token-2']);
  });

  it('renews again when the renewed token is refused too (it expired before its answer came)', async () => {
    handler = ({ authorization, reply }) => (authorization === 'Bearer token-0' || authorization === 'Bearer token-1' ? reply(401, '{"Message":"Authorization has been denied for this request."}') : reply(200, '[]'));
    await expect(client().listSubscriptions()).resolves.toEqual([]);
    expect(invalidated).toEqual(['token-0', 'token-1']);
  });

  it('reports an untrusted certificate as a TLS error without retrying', async () => {
    const untrusting = new Agent();
    const api = new ActivityClient({ ...clientLimits, apiRoot: root, tenantId: tenant, publisherId: publisher, dispatcher: untrusting, tokens: { getToken: async () => 't', invalidate: () => {} }, retry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 1 } });
    const error = await api.listSubscriptions().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TransportError);
    expect((error as TransportError).toLine()).toMatch(/is not trusted.*NODE_EXTRA_CA_CERTS/);
    expect(seen).toHaveLength(0);
    await untrusting.close();
  });

  it('stops waiting and retrying when aborted', async () => {
    handler = ({ reply }) => reply(429, af('AF429'), { 'retry-after': '3600' });
    const controller = new AbortController();
    const api = new ActivityClient({ ...clientLimits, apiRoot: root, tenantId: tenant, publisherId: publisher, dispatcher: agent, tokens: { getToken: async () => 't', invalidate: () => {} } });
    const pending = api.listSubscriptions({ abortSignal: controller.signal });
    while (seen.length === 0) await new Promise((r) => setImmediate(r));
    controller.abort(new Error('stopped by SIGTERM'));
    await expect(pending).rejects.toThrow('stopped by SIGTERM');
  });
});

describe('ActivityClient request budget', () => {
  it('never has more requests in flight at the server than its limit', async () => {
    peak = 0;
    const waiting: Array<() => void> = [];
    handler = ({ reply }) => { waiting.push(() => reply(200, '[{"Id":"x"}]')); };
    const api = client({ maxInFlight: 3 });
    const all = Promise.all(Array.from({ length: 20 }, (_, i) => api.fetchContent(blob(`c${i}`))));
    let answered = 0;
    while (answered < 20) {
      while (waiting.length === 0) await new Promise((r) => setTimeout(r, 1));
      expect(inFlight).toBeLessThanOrEqual(3);
      waiting.shift()!();
      answered += 1;
    }
    await all;
    expect(peak).toBe(3);
  });
});

describe('content bodies beyond --max-blob-bytes', () => {
  const blob = { contentType: 'Audit.Exchange' as const, contentId: 'huge-blob-1', contentUri: `${feed}/audit/huge-blob-1`, contentCreated: '2026-11-25T10:00:00.000Z', contentExpiration: '2026-12-02T10:00:00.000Z' };

  it('refuses a blob that announces more than the bound, naming its content id, without reading or retrying it', async () => {
    seen.length = 0;
    let written = 0;
    handler = ({ res }) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(500 * 1024 * 1024) });
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const pump = () => { while (!res.destroyed && written < 500 * 1024 * 1024 && res.write(chunk)) written += chunk.length; };
      res.on('drain', pump);
      pump();
    };
    const error = await client({ maxBlobBytes: 1024 * 1024 }).fetchContent(blob).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'BLOB_TOO_LARGE', retryable: false });
    expect((error as Error).message).toMatch(/content huge-blob-1 of Audit.Exchange: the body announces 524288000 bytes, more than 1048576/);
    expect(seen.filter((r) => r.url.pathname.endsWith('/huge-blob-1'))).toHaveLength(1);
    expect(written).toBeLessThan(100 * 1024 * 1024);
  });

  it('stops an endless body at the bound instead of growing without end', async () => {
    handler = ({ res }) => {
      res.writeHead(200, { 'content-type': 'application/json' }); // chunked, no length: it never ends
      const chunk = Buffer.from(`[${'{"Id":"x"},'.repeat(5000)}`);
      const pump = () => { while (!res.destroyed && res.write(chunk)); };
      res.on('drain', pump);
      pump();
    };
    const before = process.memoryUsage().rss;
    const error = await client({ maxBlobBytes: 4 * 1024 * 1024 }).fetchContent(blob).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'BLOB_TOO_LARGE' });
    expect((error as Error).message).toMatch(/the body grew past 4194304 bytes/);
    expect(process.memoryUsage().rss - before).toBeLessThan(200 * 1024 * 1024);
  });
});

describe('a total deadline per request', () => {
  it('abandons a body trickled byte by byte at the deadline and retries it, instead of hanging', async () => {
    seen.length = 0;
    const timers: NodeJS.Timeout[] = [];
    handler = ({ res }) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100000' });
      // One byte every 100 ms: never idle long enough for the idle timeouts, never done.
      const drip = setInterval(() => { if (res.destroyed) clearInterval(drip); else res.write('['); }, 100);
      timers.push(drip);
    };
    try {
      const error = await client({ maxAttempts: 2, requestDeadlineMs: 600 }).fetchContent({
        contentType: 'Audit.Exchange', contentId: 'trickle', contentUri: `${feed}/audit/trickle`, contentCreated: '2026-11-25T10:00:00.000Z', contentExpiration: '2026-12-02T10:00:00.000Z',
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TransportError);
      expect(error).toMatchObject({ code: 'REQUEST_TIMEOUT', retryable: true });
      expect((error as Error).message).toMatch(/no complete answer from 127\.0\.0\.1:\d+ within 0\.6 s/);
      expect(seen.filter((r) => r.url.pathname.endsWith('/trickle'))).toHaveLength(2); // retried once, then reported
    } finally {
      for (const timer of timers) clearInterval(timer);
    }
  });

  it('leaves no timer and no abort listener behind once a request is answered (a backfill makes thousands)', async () => {
    handler = ({ reply }) => reply(200, '[]');
    const run = new AbortController();
    let listeners = 0;
    const add = run.signal.addEventListener.bind(run.signal);
    const remove = run.signal.removeEventListener.bind(run.signal);
    run.signal.addEventListener = (...args: Parameters<AbortSignal['addEventListener']>) => { listeners += 1; add(...args); };
    run.signal.removeEventListener = (...args: Parameters<AbortSignal['removeEventListener']>) => { listeners -= 1; remove(...args); };
    // Timers still pending (created and neither fired nor cleared), seen through async_hooks: unref'd ones included.
    const pending = new Set<number>();
    const hook = createHook({ init: (id, type) => { if (type === 'Timeout') pending.add(id); }, destroy: (id) => pending.delete(id) }).enable();
    const api = client({ requestDeadlineMs: 300_000 });
    try {
      for (let i = 0; i < 100; i += 1) {
        await api.fetchContent({ ...blob(`quick-${i}`), contentUri: `${feed}/audit/quick-${i}` }, { abortSignal: run.signal });
      }
      await new Promise((resolve) => setImmediate(resolve)); // destroy hooks run after the clearing tick
    } finally {
      hook.disable();
    }
    // A few belong to connections and the budget (undici's and the test server's own timers), none to each request.
    expect(pending.size).toBeLessThan(20);
    expect(listeners).toBe(0);
  });
});

