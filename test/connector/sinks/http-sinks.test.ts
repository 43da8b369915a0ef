import { afterEach, describe, expect, it } from 'vitest';
import { HttpSink } from '../../../connector/sinks/http.ts';
import { SplunkHecSink, hecTime } from '../../../connector/sinks/splunk-hec.ts';
import { ElasticsearchSink } from '../../../connector/sinks/elasticsearch.ts';
import { createSink } from '../../../connector/sinks/spec.ts';
import type { AuditRecord } from '../../../connector/sinks/sink.ts';
import { Telemetry } from '../../../connector/status/telemetry.ts';
import { createLogger } from '../../../connector/status/log.ts';
import { bulkReceiver, hecReceiver, ndjsonReceiver, type Receiver } from '../../receivers/http-receivers.ts';

const records = (n: number, prefix = 'r'): AuditRecord[] => Array.from({ length: n }, (_, i) => ({
  Id: `${prefix}-${i}`, CreationTime: '2026-11-25T10:00:0' + (i % 10), Operation: 'MailItemsAccessed', Workload: 'Exchange', ObjectId: i % 2 ? 'ä\nb' : 'plain',
}));
const open: Receiver[] = [];
afterEach(async () => { await Promise.all(open.splice(0).map((r) => r.close())); });
const env = { COLLECTOR_TOKEN: 'tok-123-secret', SPLUNK_HEC_TOKEN: 'hec-00000000-1111', ES_API_KEY: 'es-key-secret' };

describe('generic HTTP sink', () => {
  it('POSTs gzip NDJSON batches bounded by count, with headers and the token from the environment', async () => {
    const receiver = await ndjsonReceiver(); open.push(receiver);
    const sink = new HttpSink(`${receiver.url}/ingest?gzip=1&maxRecords=40&tokenEnv=COLLECTOR_TOKEN&header.X-Source=o365`, { env });
    await sink.write({ contentType: 'Audit.Exchange', records: records(100) });
    await sink.close();
    expect(receiver.requests).toHaveLength(3);
    expect(receiver.requests[0]!.headers).toMatchObject({ 'content-encoding': 'gzip', authorization: 'Bearer tok-123-secret', 'x-source': 'o365', 'content-type': 'application/x-ndjson' });
    const ids = receiver.requests.flatMap((r) => r.body.split('\n').filter(Boolean).map((l) => JSON.parse(l).Id));
    expect(ids).toEqual(records(100).map((r) => r.Id));
    expect(sink.name).not.toContain('tok-123');
  });

  it('retries 503 with Retry-After, 429 and a dropped connection, then acknowledges', async () => {
    const receiver = await ndjsonReceiver(); open.push(receiver);
    receiver.script({ status: 503, headers: { 'retry-after': '0' } }, 'drop', { status: 429 });
    const sink = new HttpSink(`${receiver.url}/ingest?maxAttempts=5`, { env });
    await sink.write({ contentType: 'Audit.General', records: records(5) });
    await sink.close();
    expect(receiver.requests).toHaveLength(1);
  });

  it('gives up on a response slower than timeoutMs and sends the batch again, so it is not lost', async () => {
    const receiver = await ndjsonReceiver(); open.push(receiver);
    receiver.script({ slowMs: 2000 });
    const sink = new HttpSink(`${receiver.url}/ingest?timeoutMs=200&maxAttempts=3`, { env });
    await sink.write({ contentType: 'Audit.General', records: records(3) });
    await sink.close();
    // The slow request's body is not recorded (it never got its answer); the retry is.
    expect(receiver.requests.map((r) => r.body.split('\n').filter(Boolean).length)).toEqual([3]);
  });

  it('rejects (for the pipeline to retry) when the collector keeps failing, and names the status', async () => {
    const receiver = await ndjsonReceiver(); open.push(receiver);
    receiver.script({ status: 500 }, { status: 500 });
    const sink = new HttpSink(`${receiver.url}/ingest?maxAttempts=2`, { env });
    await expect(sink.write({ contentType: 'Audit.General', records: records(2) })).rejects.toMatchObject({ code: 'HTTP500', retryable: true });
    receiver.script({ status: 401, body: 'unauthorized' });
    await expect(sink.write({ contentType: 'Audit.General', records: records(2) })).rejects.toThrow(/HTTP 401.*/);
    await sink.close();
  });

  it('refuses a token in the spec itself and names a missing environment variable', () => {
    expect(() => new HttpSink('https://user:secret@collector.example/ingest')).toThrow(/credentials in the sink URL are not accepted/);
    expect(() => new HttpSink('https://collector.example/ingest?tokenEnv=NOPE', { env: {} })).toThrow(/environment variable NOPE is not set/);
  });
});

describe('Splunk HEC sink', () => {
  it('sends HEC events with time from CreationTime (UTC), sourcetype per content type, index and the Splunk token', async () => {
    const receiver = await hecReceiver(env.SPLUNK_HEC_TOKEN); open.push(receiver);
    const port = new URL(receiver.url).port;
    const sink = new SplunkHecSink(`splunk-hec://127.0.0.1:${port}?tls=0&tokenEnv=SPLUNK_HEC_TOKEN&index=o365`, { env });
    await sink.write({ contentType: 'Audit.Exchange', records: records(3) });
    await sink.write({ contentType: 'DLP.All', records: records(1, 'dlp') });
    await sink.close();
    const events = receiver.requests.flatMap((r) => r.body.split('\n').map((l) => JSON.parse(l)));
    expect(events[0]).toEqual({ time: Date.parse('2026-11-25T10:00:00Z') / 1000, source: 'o365-connector', sourcetype: 'o365:audit:exchange', index: 'o365', event: records(3)[0] });
    expect(events[3].sourcetype).toBe('o365:dlp:all');
    expect(receiver.requests[0]!.headers.authorization).toBe('Splunk hec-00000000-1111');
    expect(hecTime({ Id: 'x', CreationTime: '2026-11-25T10:00:00' })).toBe(Date.parse('2026-11-25T10:00:00Z') / 1000);
  });

  it('retries HEC busy (code 9) and reports an invalid token (code 4) with the fix', async () => {
    const receiver = await hecReceiver('another-token'); open.push(receiver);
    const port = new URL(receiver.url).port;
    const sink = new SplunkHecSink(`splunk-hec://127.0.0.1:${port}?tls=0&tokenEnv=SPLUNK_HEC_TOKEN`, { env });
    const failure = await sink.write({ contentType: 'Audit.General', records: records(1) }).catch((error: import('../../../connector/errors.ts').ConnectorError) => error);
    expect(failure).toMatchObject({ code: 'HEC4', retryable: false });
    expect((failure as import('../../../connector/errors.ts').ConnectorError).toLine()).toMatch(/^HEC4: Splunk HEC .*the HEC token is invalid \(HTTP 403\)\. Fix: check the token named by tokenEnv$/);
    const good = await hecReceiver(env.SPLUNK_HEC_TOKEN); open.push(good);
    good.script({ status: 503, body: JSON.stringify({ text: 'Server is busy', code: 9 }) });
    const retrying = new SplunkHecSink(`splunk-hec://127.0.0.1:${new URL(good.url).port}?tls=0&tokenEnv=SPLUNK_HEC_TOKEN`, { env });
    await retrying.write({ contentType: 'Audit.General', records: records(2) });
    expect(good.requests).toHaveLength(1);
    await sink.close(); await retrying.close();
  });

  it('reports an index the token may not write to (code 7)', async () => {
    const receiver = await hecReceiver(env.SPLUNK_HEC_TOKEN, ['main']); open.push(receiver);
    const sink = new SplunkHecSink(`splunk-hec://127.0.0.1:${new URL(receiver.url).port}?tls=0&tokenEnv=SPLUNK_HEC_TOKEN&index=secret-index`, { env });
    await expect(sink.write({ contentType: 'Audit.General', records: records(1) })).rejects.toMatchObject({ code: 'HEC7', retryable: false });
    await sink.close();
  });
});

describe('Elasticsearch bulk sink', () => {
  it('indexes each record once under its Id: re-sending is idempotent (409 counts as stored)', async () => {
    const receiver = await bulkReceiver(); open.push(receiver);
    const sink = new ElasticsearchSink(`elasticsearch://127.0.0.1:${new URL(receiver.url).port}/o365-audit?tls=0&apiKeyEnv=ES_API_KEY`, { env });
    await sink.write({ contentType: 'Audit.Exchange', records: records(20) });
    await sink.write({ contentType: 'Audit.Exchange', records: records(20) });
    await sink.close();
    expect(receiver.documents.size).toBe(20);
    expect(receiver.documents.get('o365-audit/r-3')).toEqual(records(20)[3]);
    expect(receiver.requests[0]!.headers.authorization).toBe('ApiKey es-key-secret');
  });

  it('re-sends only the items that failed with 429, and honours a 429 for the whole request', async () => {
    const receiver = await bulkReceiver(); open.push(receiver);
    receiver.script({ status: 429, headers: { 'retry-after': '0' } });
    receiver.failItems(0, 429, 0, 429);
    const sink = new ElasticsearchSink(`elasticsearch://127.0.0.1:${new URL(receiver.url).port}/o365-audit?tls=0`, { env });
    await sink.write({ contentType: 'Audit.General', records: records(6) });
    await sink.close();
    expect(receiver.documents.size).toBe(6);
    const second = receiver.requests[1]!.body.split('\n').filter(Boolean);
    expect(second).toHaveLength(4); // two items, action + source each
  });

  it('rejects the batch with Elasticsearch\'s reason when a record cannot be mapped', async () => {
    const receiver = await bulkReceiver(); open.push(receiver);
    receiver.failItems(0, 400);
    const sink = new ElasticsearchSink(`elasticsearch://127.0.0.1:${new URL(receiver.url).port}/o365-audit?tls=0`, { env });
    await expect(sink.write({ contentType: 'Audit.General', records: records(2) })).rejects.toThrow(/rejected record r-1: mapper_parsing_exception failed to parse field \[ObjectId\]/);
    await sink.close();
  });

  it('refuses an index that is not one lowercase name', () => {
    expect(() => new ElasticsearchSink('elasticsearch://es:9200/O365')).toThrow(/one lowercase index name/);
  });
});

describe('sink specs', () => {
  it('chooses the sink by scheme and format, and never puts a secret in its name', () => {
    const context = { env, telemetry: new Telemetry(), logger: createLogger({ level: 'silent' }) };
    expect(createSink('https://c.example/in?tokenEnv=COLLECTOR_TOKEN', context)).toBeInstanceOf(HttpSink);
    expect(createSink('https://splunk.example:8088/services/collector/event?format=hec&tokenEnv=SPLUNK_HEC_TOKEN', context)).toBeInstanceOf(SplunkHecSink);
    expect(createSink('https://es.example:9200/o365?format=bulk', context)).toBeInstanceOf(ElasticsearchSink);
    expect(createSink('splunk-hec://splunk.example:8088?tokenEnv=SPLUNK_HEC_TOKEN', context).name).toBe('splunk-hec://splunk.example:8088');
    expect(() => createSink('kafka://broker:9092/topic', context)).toThrow(/unknown sink "kafka"/);
  });
});
