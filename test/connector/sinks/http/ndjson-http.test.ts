import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { ElasticsearchSink } from '../../../../connector/sinks/http/elasticsearch.ts';
import { SplunkHecSink } from '../../../../connector/sinks/http/splunk-hec.ts';
import { HttpSink } from '../../../../connector/sinks/http/ndjson-http.ts';
import { ConnectorError } from '../../../../connector/core/errors.ts';
import { Telemetry } from '../../../../connector/observe/telemetry.ts';
import { createTestPki, type TestPki } from '../../../emulator/tls.ts';
import { ndjsonReceiver, type Receiver } from '../../../receivers/http-receivers.ts';
import { auditRecords, lines, ndjsonOf, rawRecord } from '../records.ts';

const env = { COLLECTOR_TOKEN: 'tok-123-secret', COLLECTOR_KEY: 'key-456-secret' };
const open: Receiver[] = [];
afterEach(async () => { await Promise.all(open.splice(0).map((r) => r.close())); });
const receiver = async (...args: Parameters<typeof ndjsonReceiver>) => { const r = await ndjsonReceiver(...args); open.push(r); return r; };
/** Every byte the collector accepted, in order. */
const received = (r: Receiver) => Buffer.concat(r.requests.map((q) => q.raw));

describe('generic HTTP sink', () => {
  it('POSTs gzip NDJSON bounded by maxRecords, each line the bytes it was given, with custom headers and the token from the environment', async () => {
    const collector = await receiver();
    const telemetry = new Telemetry();
    const sink = new HttpSink(`${collector.url}/ingest?gzip=1&insecure=1&maxRecords=40&tokenEnv=COLLECTOR_TOKEN&header.X-Source=o365&headerEnv.X-Api-Key=COLLECTOR_KEY`, { env, telemetry: telemetry.component('http', 'sink') });
    const sent = auditRecords(100);
    await sink.write({ contentType: 'Audit.Exchange', records: sent });
    await sink.close();
    expect(collector.requests.map((r) => lines(r.raw).length)).toEqual([40, 40, 20]);
    expect(collector.requests[0]!.url).toBe('/ingest');
    expect(collector.requests[0]!.headers).toMatchObject({ 'content-encoding': 'gzip', authorization: 'Bearer tok-123-secret', 'x-source': 'o365', 'x-api-key': 'key-456-secret', 'content-type': 'application/x-ndjson' });
    expect(received(collector).equals(ndjsonOf(sent))).toBe(true);
    const [counters] = telemetry.snapshot();
    expect(counters).toMatchObject({ sentRecords: 100, errors: 0 });
    expect(counters!.sentBytes).toBe(ndjsonOf(sent).length);
  });

  it('cuts requests at maxBytes, a record larger than the bound going alone', async () => {
    const collector = await receiver();
    const sink = new HttpSink(`${collector.url}/ingest?maxBytes=4096`, { env });
    const sent = auditRecords(30);
    sent[5] = rawRecord(`${sent[5]!.bytes.subarray(0, -1).toString()},"Parameters":"${'x'.repeat(10_000)}"}`);
    await sink.write({ contentType: 'Audit.Exchange', records: sent });
    await sink.close();
    for (const request of collector.requests) {
      expect(lines(request.raw).length === 1 || request.raw.length <= 4096).toBe(true);
    }
    expect(collector.requests.length).toBeGreaterThan(3);
    expect(received(collector).equals(ndjsonOf(sent))).toBe(true);
  });

  it('retries 503 with Retry-After, a dropped connection and 429, reporting each as a sending error, then acknowledges', async () => {
    const collector = await receiver();
    collector.script({ status: 503, headers: { 'retry-after': '0' } }, 'drop', { status: 429, headers: { 'retry-after': '0' } });
    const telemetry = new Telemetry();
    const sink = new HttpSink(`${collector.url}/ingest?maxAttempts=5`, { env, telemetry: telemetry.component('http', 'sink') });
    await sink.write({ contentType: 'Audit.General', records: auditRecords(5) });
    await sink.close();
    expect(collector.attempts()).toBe(4);
    expect(received(collector).equals(ndjsonOf(auditRecords(5)))).toBe(true);
    const [counters] = telemetry.snapshot();
    expect(counters).toMatchObject({ sentRecords: 5, errors: 3, discardedRecords: 0, lastError: { stage: 'sending' } });
    expect(Object.keys(counters!.errorsByCode).sort()).toEqual(['HTTP429', 'HTTP503', 'UND_ERR_SOCKET']);
  });

  it('abandons a response slower than timeoutMs and sends the batch again, so it is not lost', async () => {
    const collector = await receiver();
    collector.script({ slowMs: 5000 });
    const sink = new HttpSink(`${collector.url}/ingest?timeoutMs=200&maxAttempts=3`, { env });
    await sink.write({ contentType: 'Audit.General', records: auditRecords(3) });
    await sink.close();
    expect(collector.attempts()).toBe(2);
    expect(received(collector).equals(ndjsonOf(auditRecords(3)))).toBe(true);
  });

  it('re-sends a batch the collector stored but could not answer: duplicates possible, loss never (at least once)', async () => {
    const collector = await receiver();
    collector.script('storeThenDrop');
    const sink = new HttpSink(`${collector.url}/ingest`, { env });
    await sink.write({ contentType: 'Audit.General', records: auditRecords(4) });
    await sink.close();
    expect(received(collector).equals(ndjsonOf([...auditRecords(4), ...auditRecords(4)]))).toBe(true);
  });

  it('rejects as retryable when the collector keeps failing, and as final on 401 and 413 with the fix', async () => {
    const collector = await receiver();
    collector.script({ status: 500 }, { status: 500 });
    const sink = new HttpSink(`${collector.url}/ingest?maxAttempts=2&insecure=1&tokenEnv=COLLECTOR_TOKEN`, { env });
    await expect(sink.write({ contentType: 'Audit.General', records: auditRecords(2) })).rejects.toMatchObject({ code: 'HTTP500', retryable: true });
    collector.script({ status: 401, body: '{"error":"unauthorized"}' });
    const unauthorized = await sink.write({ contentType: 'Audit.General', records: auditRecords(2) }).catch((e: ConnectorError) => e);
    expect(unauthorized).toMatchObject({ code: 'HTTP401', retryable: false });
    expect((unauthorized as ConnectorError).toLine()).toMatch(/^HTTP401: http:\/\/127\.0\.0\.1:\d+\/ingest answered HTTP 401: \{"error":"unauthorized"\}\. Fix: check the credential named by tokenEnv/);
    expect((unauthorized as ConnectorError).toLine()).not.toContain('tok-123-secret');
    collector.script({ status: 413 });
    await expect(sink.write({ contentType: 'Audit.General', records: auditRecords(2) })).rejects.toMatchObject({ code: 'HTTP413', retryable: false, fix: expect.stringMatching(/lower maxBytes or maxRecords/) });
    expect(collector.attempts()).toBe(4);
    await sink.close();
  });

  it('rejects as retryable while the collector refuses connections', async () => {
    const collector = await receiver();
    const url = collector.url;
    await collector.close();
    const sink = new HttpSink(`${url}/ingest?maxAttempts=2`, { env });
    await expect(sink.write({ contentType: 'Audit.General', records: auditRecords(2) })).rejects.toMatchObject({ code: 'ECONNREFUSED', retryable: true });
    await sink.close();
  });

  describe('over https', () => {
    let pki: TestPki;
    beforeAll(async () => { pki = await createTestPki(); });

    it('trusts the collector through ca= and refuses, as not retryable, when the CA is not given', async () => {
      const collector = await receiver({ tls: { cert: await readFile(pki.server.certFile, 'utf8'), key: await readFile(pki.server.keyFile, 'utf8') } });
      const trusting = new HttpSink(`${collector.url}/ingest?ca=${pki.caFile}`, { env });
      await trusting.write({ contentType: 'Audit.General', records: auditRecords(3) });
      await trusting.close();
      expect(received(collector).equals(ndjsonOf(auditRecords(3)))).toBe(true);
      const untrusting = new HttpSink(`${collector.url}/ingest`, { env });
      const error = await untrusting.write({ contentType: 'Audit.General', records: auditRecords(3) }).catch((e: ConnectorError) => e);
      await untrusting.close();
      expect(error).toMatchObject({ retryable: false, message: expect.stringMatching(/TLS certificate of 127\.0\.0\.1:\d+ does not verify/), fix: expect.stringMatching(/ca=/) });
      expect(collector.requests).toHaveLength(1);
    });
  });

  it('refuses a credential over plain http unless insecure=1 says the path is trusted', () => {
    const env = { COLLECTOR_TOKEN: 'tok-abcdef123456', COLLECTOR_KEY: 'key-abcdef123456' };
    expect(() => new HttpSink('http://collector.example:8080/ingest?tokenEnv=COLLECTOR_TOKEN', { env })).toThrow('--sink: http://collector.example:8080/ingest: tokenEnv would cross the network in clear text over http');
    expect(() => new HttpSink('http://collector.example:8080/ingest?headerEnv.X-Api-Key=COLLECTOR_KEY', { env })).toThrow(/headerEnv would cross the network in clear text/);
    expect(() => new SplunkHecSink('splunk-hec://splunk.example:8088?tls=0&tokenEnv=COLLECTOR_TOKEN', { env })).toThrow('--sink: splunk-hec://splunk.example:8088: tokenEnv would cross the network in clear text over http');
    expect(() => new ElasticsearchSink('elasticsearch://es.example:9200/o365?tls=0&apiKeyEnv=COLLECTOR_KEY', { env })).toThrow(/apiKeyEnv would cross the network in clear text/);
    new HttpSink('http://collector.example:8080/ingest?tokenEnv=COLLECTOR_TOKEN&insecure=1', { env });
    new HttpSink('https://collector.example:8443/ingest?tokenEnv=COLLECTOR_TOKEN', { env });
    new HttpSink('http://collector.example:8080/ingest', { env }); // nothing secret to send
  });
});

