import { describe, expect, it } from 'vitest';
import { request } from 'undici';
import type { EmulatorOptions } from './index.ts';
import { apiTime, callApi, listAll, msalToken } from './support.ts';
import { standInsOfThisFile } from './stand-ins.ts';

const hour = 3_600_000;
const fixedNow = new Date('2026-11-20T12:00:30Z');
const standIns = standInsOfThisFile();

async function emulatorWith(options: EmulatorOptions) {
  const emulator = await standIns.start({ now: () => fixedNow, enabledContentTypes: ['Audit.Exchange'], days: 1, blobIntervalMinutes: 10, recordsPerBlob: 4, ...options });
  const token = await msalToken(emulator, standIns.agent);
  const listingPath = `subscriptions/content?contentType=Audit.Exchange&startTime=${apiTime(new Date(fixedNow.getTime() - 6 * hour))}&endTime=${apiTime(fixedNow)}`;
  const call = (path: string, publisher?: string | null) => callApi(emulator, standIns.agent, token, path, publisher === undefined ? {} : { publisher });
  return { emulator, token, call, listingPath };
}

describe('quota per PublisherIdentifier', () => {
  it('throttles beyond the quota of a publisher with AF429 and no Retry-After, per minute, and callers without one share a smaller bucket', async () => {
    const { emulator, call } = await emulatorWith({ seed: 3, quotaPerMinute: 20, anonymousQuotaPerMinute: 2 });
    const anonymous = [];
    for (let i = 0; i < 3; i += 1) anonymous.push((await call('subscriptions/list', null)).status);
    expect(anonymous).toEqual([200, 200, 429]);
    const named = [];
    for (let i = 0; i < 21; i += 1) named.push(await call('subscriptions/list'));
    expect(named.filter((answer) => answer.status === 200)).toHaveLength(20);
    expect(named.at(-1)).toMatchObject({ status: 429, body: { error: { code: 'AF429', message: `Too many requests. Method=GET, PublisherId=${emulator.tenantId}` } } });
    expect(named.at(-1)!.headers['retry-after']).toBeUndefined();
    expect((await call('subscriptions/list', '4ab5c2d1-0000-4000-8000-00000000beef')).status).toBe(200);
    emulator.advance(60_000);
    expect((await call('subscriptions/list')).status).toBe(200);
    expect(emulator.counters()).toMatchObject({ throttled: 2, missingPublisherIdentifier: 3 });
  });

  it('refills the quota on elapsed real time even when the content clock stands still', async () => {
    let elapsed = 0;
    const { emulator, call } = await emulatorWith({ seed: 4, quotaPerMinute: 3, elapsedMs: () => elapsed });
    const statuses = [];
    for (let i = 0; i < 4; i += 1) statuses.push((await call('subscriptions/list')).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    elapsed += 60_000; // a minute passes; the content clock (fixedNow) does not move
    expect((await call('subscriptions/list')).status).toBe(200);
    expect(emulator.now().getTime()).toBe(fixedNow.getTime());
  });
});

describe('scheduled and rated faults', () => {
  it('answers AF429 as HTTP 403 with a Retry-After, 500 AF50000, and cuts a blob mid-body, on the scheduled requests', async () => {
    const { emulator, call, listingPath } = await emulatorWith({ seed: 4 });
    emulator.resetCounters();
    emulator.setFaults({ throttleStatus: 403, retryAfterSeconds: 2, schedule: [{ from: 1, to: 1, fault: 'throttle' }, { from: 2, to: 2, fault: 'server-error' }, { from: 4, to: 4, fault: 'drop' }] });
    const throttled = await call(listingPath);
    expect(throttled).toMatchObject({ status: 403, body: { error: { code: 'AF429' } } });
    expect(throttled.headers['retry-after']).toBe('2');
    expect(await call(listingPath)).toMatchObject({ status: 500, body: { error: { code: 'AF50000', message: 'An internal error occurred. Retry the request.' } } });
    const page = await call(listingPath);
    await expect(call(page.body[0].contentUri)).rejects.toThrow();
    expect((await call(page.body[0].contentUri)).status).toBe(200);
    expect(emulator.counters()).toMatchObject({ throttled: 1, serverErrors: 1, dropped: 1, blobsServed: 2 });
  });

  it('cuts a listing mid-body when a drop is scheduled on that route', async () => {
    const { call, listingPath } = await emulatorWith({ seed: 15, faults: { schedule: [{ fault: 'drop', from: 1, to: 1, routes: ['subscriptions/content'] }] } });
    await expect(call(listingPath)).rejects.toThrow();
    expect((await call(listingPath)).status).toBe(200);
  });

  it('applies an every-Nth rule only on its routes, counting those routes only', async () => {
    const { emulator, call, listingPath } = await emulatorWith({ seed: 5, faults: { serverErrorCode: 'AF50005', schedule: [{ fault: 'server-error', every: 3, routes: ['audit'] }] } });
    const { entries } = await listAll(emulator, standIns.agent, (await msalToken(emulator, standIns.agent)), listingPath);
    const statuses = [];
    for (const entry of entries.slice(0, 9)) {
      statuses.push((await call(entry.contentUri)).status);
      expect((await call('subscriptions/list')).status).toBe(200);
    }
    expect(statuses).toEqual([200, 200, 500, 200, 200, 500, 200, 200, 500]);
    expect((await call(entries[2]!.contentUri)).status).toBe(200); // the 10th fetch
  });

  it('answers expired blobs with AF20051, revokes tokens, and a 503 without an AF body, by schedule', async () => {
    const { emulator, call, listingPath, token } = await emulatorWith({ seed: 6, faults: { serverErrorCode: '503', schedule: [{ fault: 'expired', from: 1, to: 1, routes: ['audit'] }, { fault: 'server-error', from: 3, to: 3 }] } });
    const page = await call(listingPath);
    const expired = await call(page.body[0].contentUri);
    expect(expired.body.error.code).toBe('AF20051');
    expect(await call('subscriptions/list')).toMatchObject({ status: 503, text: 'Service Unavailable' });
    emulator.setFaults({ schedule: [{ fault: 'revoke', from: 1, to: 1 }] });
    expect((await call('subscriptions/list')).status).toBe(401);
    expect((await callApi(emulator, standIns.agent, token, 'subscriptions/list')).status).toBe(401);
    expect((await callApi(emulator, standIns.agent, await msalToken(emulator, standIns.agent), 'subscriptions/list')).status).toBe(200);
    expect(emulator.counters().expiredServed).toBe(1);
  });

  it('draws rated faults from the seed: the same seed and requests give the same answers', async () => {
    const run = async (seed: number) => {
      const { call, listingPath } = await emulatorWith({ seed, faults: { throttleRate: 0.3, serverErrorRate: 0.2 } });
      const statuses = [];
      for (let i = 0; i < 30; i += 1) statuses.push((await call(listingPath)).status);
      return statuses;
    };
    const first = await run(12);
    expect(await run(12)).toEqual(first);
    expect(first).toContain(429);
    expect(first).toContain(500);
    expect(first).toContain(200);
    expect(await run(13)).not.toEqual(first);
  });

  it('changes faults at run time and reports them', async () => {
    const { emulator, call } = await emulatorWith({ seed: 7, faults: { throttleRate: 1 } });
    expect((await call('subscriptions/list')).status).toBe(429);
    emulator.setFaults({});
    expect(emulator.faults()).toEqual({});
    expect((await call('subscriptions/list')).status).toBe(200);
  });

  it('adds latency: slow answers overlap and show in peak concurrency', async () => {
    const { emulator, call } = await emulatorWith({ seed: 8, faults: { latencyMs: 150 } });
    emulator.resetCounters();
    await Promise.all([call('subscriptions/list'), call('subscriptions/list'), call('subscriptions/list')]);
    expect(emulator.counters().peakConcurrency).toBe(3);
  });
});

describe('counters', () => {
  it('counts requests per route, status and minute, tokens issued, bytes and records served', async () => {
    const { emulator, call, listingPath } = await emulatorWith({ seed: 9 });
    const page = await call(listingPath);
    const blob = await call(page.body[0].contentUri);
    await call('subscriptions/content?contentType=Audit.Exchange&startTime=2026-11-20');
    const counters = emulator.counters();
    expect(counters.byRoute).toMatchObject({ token: 1, 'subscriptions/content': 2, audit: 1 });
    expect(counters.byStatus).toEqual({ 200: 4, 400: 1 }); // OpenID metadata, token, listing, blob; the bad window
    expect(counters.perMinute).toEqual({ '2026-11-20T12:00': counters.requests });
    expect(counters).toMatchObject({ apiRequests: 3, tokensIssued: 1, windowsRejected: 1, blobsServed: 1, recordsServed: blob.body.length });
    expect(counters.bytesServed).toBeGreaterThan(Buffer.byteLength(blob.text) + Buffer.byteLength(page.text));
    emulator.resetCounters();
    expect(emulator.counters()).toMatchObject({ requests: 0, apiRequests: 0, byRoute: {}, bytesServed: 0 });
  });

  it('serves its counters to another process on a non-Microsoft path', async () => {
    const { emulator, call } = await emulatorWith({ seed: 10 });
    await call('subscriptions/list');
    const response = await request(`${emulator.apiRoot}/_emulator/counters`, { dispatcher: standIns.agent });
    expect(await response.body.json()).toMatchObject({ apiRequests: 1, tokensIssued: 1 });
  });
});
