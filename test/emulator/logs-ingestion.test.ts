import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { gzipSync } from 'node:zlib';
import { Agent, request } from 'undici';
import { startEmulator } from './index.ts';
import { msalToken } from './support.ts';

const emulator = await startEmulator({ seed: 28 });
const agent = new Agent({ connect: { ca: emulator.caCertPem } });
afterAll(async () => { await emulator.stop(); await agent.close(); });
afterEach(() => emulator.logsIngestion.reset());
const ingestion = emulator.logsIngestion;
const monitorToken = () => msalToken(emulator, agent, {}, 'https://monitor.azure.com/.default');

async function post(options: { token?: string | undefined; body?: Buffer | string; gzip?: boolean; rule?: string; stream?: string; apiVersion?: string } = {}) {
  const url = `${emulator.apiRoot}/dataCollectionRules/${options.rule ?? ingestion.rule}/streams/${options.stream ?? ingestion.stream}?api-version=${options.apiVersion ?? '2023-01-01'}`;
  const raw = Buffer.from(options.body ?? '[]');
  const body = options.gzip ? gzipSync(raw) : raw;
  const response = await request(url, {
    method: 'POST', dispatcher: agent, body,
    headers: { 'content-type': 'application/json', ...(options.gzip ? { 'content-encoding': 'gzip' } : {}), ...(options.token ? { authorization: `Bearer ${options.token}` } : {}) },
  });
  const text = await response.body.text();
  return { status: response.statusCode, text, retryAfter: response.headers['retry-after'] };
}

describe('the Logs Ingestion API stand-in', () => {
  it('accepts a gzip-compressed array for the rule\'s stream with 204, keeping only the declared columns', async () => {
    const token = await monitorToken();
    const answer = await post({ token, gzip: true, body: JSON.stringify([{ TimeGenerated: '2026-11-20T08:00:00.000Z', Id: 'a', RawData: '{"Id":"a"}', Undeclared: 1 }]) });
    expect(answer).toMatchObject({ status: 204, text: '' });
    expect(ingestion.rows()).toEqual([{ TimeGenerated: '2026-11-20T08:00:00.000Z', Id: 'a', RawData: '{"Id":"a"}' }]);
  });

  it('answers 204 to a body that is not an array, and ingests nothing (as the service does)', async () => {
    expect((await post({ token: await monitorToken(), body: '{"Id":"a"}' })).status).toBe(204);
    expect(ingestion.rows()).toEqual([]);
  });

  it('refuses no token, a token for another audience (401), an unknown rule or stream (404), a missing role (403)', async () => {
    const token = await monitorToken();
    expect((await post()).status).toBe(401);
    expect(await post({ token: await msalToken(emulator, agent) })).toMatchObject({ status: 401, text: expect.stringContaining('InvalidAudience') });
    expect(await post({ token, rule: `dcr-${'0'.repeat(32)}` })).toMatchObject({ status: 404, text: expect.stringContaining('NotFound') });
    expect(await post({ token, stream: 'Custom-Other' })).toMatchObject({ status: 404, text: expect.stringContaining('InvalidStream') });
    ingestion.grant(emulator.tenantId, emulator.clientId, false);
    try {
      expect(await post({ token })).toMatchObject({ status: 403, text: expect.stringContaining('does not have access to ingest data') });
    } finally {
      ingestion.grant(emulator.tenantId, emulator.clientId);
    }
  });

  it('refuses a wrong api-version (400), bad gzip (400), and a call over 1 MB compressed or not (413)', async () => {
    const token = await monitorToken();
    expect((await post({ token, apiVersion: '2020-01-01' })).status).toBe(400);
    const badGzip = await request(`${emulator.apiRoot}/dataCollectionRules/${ingestion.rule}/streams/${ingestion.stream}?api-version=2023-01-01`, {
      method: 'POST', dispatcher: agent, body: '[]', headers: { authorization: `Bearer ${token}`, 'content-encoding': 'gzip' },
    });
    expect(badGzip.statusCode).toBe(400);
    await badGzip.body.dump();
    const big = JSON.stringify([{ RawData: 'x'.repeat(1024 * 1024) }]);
    expect((await post({ token, body: big })).status).toBe(413);
    // Compressed it is tiny, but the limit holds for the decoded body too.
    expect((await post({ token, body: big, gzip: true })).status).toBe(413);
    expect(ingestion.rows()).toEqual([]);
  });

  it('answers 429 and 503 with Retry-After on demand, ingesting nothing of those calls', async () => {
    const token = await monitorToken();
    ingestion.faults = { throttleEvery: 1, retryAfterSeconds: 7 };
    expect(await post({ token, body: '[{"Id":"a"}]' })).toMatchObject({ status: 429, retryAfter: '7' });
    ingestion.faults = { unavailableEvery: 1 };
    expect(await post({ token, body: '[{"Id":"a"}]' })).toMatchObject({ status: 503, retryAfter: '1' });
    expect(ingestion.rows()).toEqual([]);
    expect(ingestion.counters).toMatchObject({ throttled: 1, unavailable: 1 });
  });
});
