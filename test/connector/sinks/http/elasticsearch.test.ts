import { afterEach, describe, expect, it } from 'vitest';
import { ElasticsearchSink } from '../../../../connector/sinks/http/elasticsearch.ts';
import type { ConnectorError } from '../../../../connector/core/errors.ts';
import { Telemetry } from '../../../../connector/observe/telemetry.ts';
import { bulkReceiver, type BulkReceiver } from '../../../receivers/http-receivers.ts';
import type { RawRecord } from '../../../../connector/core/records.ts';
import { auditRecords, rawRecord } from '../records.ts';

const env = { ES_API_KEY: 'es-key-secret', ES_USER: 'o365-writer', ES_PASSWORD: 'pw-secret' };
const open: BulkReceiver[] = [];
afterEach(async () => { await Promise.all(open.splice(0).map((r) => r.close())); });
async function elasticsearch(): Promise<BulkReceiver> {
  const receiver = await bulkReceiver();
  open.push(receiver);
  return receiver;
}
const specFor = (receiver: BulkReceiver, query = '') => `elasticsearch://127.0.0.1:${new URL(receiver.url).port}/o365-audit?tls=0&insecure=1${query}`;
const itemsOf = (body: string) => body.split('\n').filter(Boolean).filter((_, i) => i % 2 === 0).map((line) => JSON.parse(line) as { create: { _index: string; _id: string } });
/** The `_bulk` body for these records, built independently: a create action, then the record's bytes. */
const bulkOf = (records: readonly RawRecord[], index = 'o365-audit') => Buffer.concat(records.flatMap((r) => [
  Buffer.from(`${JSON.stringify({ create: { _index: index, _id: r.id } })}\n`), r.bytes, Buffer.from('\n'),
]));

describe('Elasticsearch bulk sink', () => {
  it('creates each record under its Id with the bytes it was given as source, so sending a batch again stores nothing twice (409 counts as stored)', async () => {
    const receiver = await elasticsearch();
    const telemetry = new Telemetry();
    const sink = new ElasticsearchSink(specFor(receiver, '&apiKeyEnv=ES_API_KEY'), { env, telemetry: telemetry.component('es', 'sink') });
    const sent = auditRecords(20);
    await sink.write({ contentType: 'Audit.Exchange', records: sent });
    await sink.write({ contentType: 'Audit.Exchange', records: sent });
    await sink.close();
    expect(receiver.documents.size).toBe(20);
    for (const record of sent) expect(receiver.documents.get(`o365-audit/${record.id}`)!.equals(record.bytes)).toBe(true);
    expect(receiver.requests[0]!.raw.equals(bulkOf(sent))).toBe(true);
    expect(itemsOf(receiver.requests[0]!.body)[0]).toEqual({ create: { _index: 'o365-audit', _id: sent[0]!.id } });
    expect(receiver.requests[0]!.headers.authorization).toBe('ApiKey es-key-secret');
    expect(receiver.requests[0]!.url).toBe('/_bulk?filter_path=errors%2Citems.*.status%2Citems.*.error');
    const [counters] = telemetry.snapshot();
    expect(counters).toMatchObject({ sentRecords: 40, errors: 0 });
    expect(counters!.sentBytes).toBe(2 * bulkOf(sent).length);
  });

  it('leaves _id out for a record without an Id, so that Elasticsearch picks one, and still sends its bytes', async () => {
    const receiver = await elasticsearch();
    const sink = new ElasticsearchSink(specFor(receiver), { env });
    const sent = [rawRecord('{"Operation":"FileAccessed","Size":1.0,"Name":"\\u00e9"}'), rawRecord('{"Id":7,"Operation":"FileAccessed"}'), ...auditRecords(1)];
    await sink.write({ contentType: 'Audit.General', records: sent });
    await sink.close();
    expect(itemsOf(receiver.requests[0]!.body).map((item) => item.create)).toEqual([{ _index: 'o365-audit' }, { _index: 'o365-audit' }, { _index: 'o365-audit', _id: sent[2]!.id }]);
    expect(receiver.requests[0]!.raw.equals(bulkOf(sent))).toBe(true);
    expect(receiver.documents.size).toBe(3);
  });

  it('re-sends only the items that failed with 429 or 503, and honours a 429 for the whole request', async () => {
    const receiver = await elasticsearch();
    receiver.script({ status: 429, headers: { 'retry-after': '0' }, body: '{"error":{"type":"es_rejected_execution_exception"},"status":429}' });
    receiver.failItems(0, 429, 0, 0, 503);
    const sink = new ElasticsearchSink(specFor(receiver), { env });
    const sent = auditRecords(6);
    await sink.write({ contentType: 'Audit.General', records: sent });
    await sink.close();
    expect(receiver.attempts()).toBe(3);
    expect(itemsOf(receiver.requests[0]!.body)).toHaveLength(6);
    expect(receiver.requests[1]!.raw.equals(bulkOf([sent[1]!, sent[4]!]))).toBe(true);
    expect([...receiver.documents.keys()].sort()).toEqual(sent.map((r) => `o365-audit/${r.id}`).sort());
    for (const record of sent) expect(receiver.documents.get(`o365-audit/${record.id}`)!.equals(record.bytes)).toBe(true);
  });

  it('rejects as retryable when shards stay busy for maxAttempts rounds', async () => {
    const receiver = await elasticsearch();
    receiver.failItems(429, 0, 429, 429);
    const sink = new ElasticsearchSink(specFor(receiver, '&maxAttempts=3'), { env });
    await expect(sink.write({ contentType: 'Audit.General', records: auditRecords(2) })).rejects.toMatchObject({ code: 'ES429', retryable: true });
    await sink.close();
  });

  it('rejects the batch with Elasticsearch\'s reason and the record Id on a mapping error, and the retry after the fix stores each record once', async () => {
    const receiver = await elasticsearch();
    receiver.failItems(0, 400);
    const sink = new ElasticsearchSink(specFor(receiver), { env });
    const sent = auditRecords(3);
    const error = await sink.write({ contentType: 'Audit.General', records: sent }).catch((e: ConnectorError) => e);
    expect(error).toMatchObject({ code: 'ES400', retryable: false });
    expect((error as ConnectorError).toLine()).toMatch(/refused record rec-000001: document_parsing_exception \[1:42\] failed to parse field \[ObjectId\].*Fix: fix the index mapping/);
    await sink.write({ contentType: 'Audit.General', records: sent });
    await sink.close();
    expect(receiver.documents.size).toBe(3);
  });

  it('stores each record once when Elasticsearch indexed a request but the connection dropped before the answer', async () => {
    const receiver = await elasticsearch();
    receiver.script('storeThenDrop');
    const sink = new ElasticsearchSink(specFor(receiver), { env });
    const sent = auditRecords(5);
    await sink.write({ contentType: 'Audit.General', records: sent });
    await sink.close();
    expect(receiver.requests).toHaveLength(2);
    expect(receiver.documents.size).toBe(5);
  });

  it('refuses an answer that is not a bulk result instead of taking it for an acknowledgement', async () => {
    const receiver = await elasticsearch();
    receiver.script({ status: 200, body: '<html>proxy login</html>' });
    const sink = new ElasticsearchSink(specFor(receiver), { env });
    await expect(sink.write({ contentType: 'Audit.General', records: auditRecords(2) })).rejects.toMatchObject({ code: 'ES_BAD_RESPONSE', retryable: false });
    await sink.close();
  });

  it('cuts requests at maxRecords, uses Basic auth from two variables and an ingest pipeline', async () => {
    const receiver = await elasticsearch();
    const sink = new ElasticsearchSink(specFor(receiver, '&maxRecords=4&usernameEnv=ES_USER&passwordEnv=ES_PASSWORD&pipeline=o365-geoip'), { env });
    await sink.write({ contentType: 'Audit.General', records: auditRecords(10) });
    await sink.close();
    expect(receiver.requests.map((r) => itemsOf(r.body).length)).toEqual([4, 4, 2]);
    expect(receiver.requests[0]!.headers.authorization).toBe(`Basic ${Buffer.from('o365-writer:pw-secret').toString('base64')}`);
    expect(new URL(receiver.requests[0]!.url, 'http://x').searchParams.get('pipeline')).toBe('o365-geoip');
    expect(sink.name).toMatch(/^elasticsearch:\/\/127\.0\.0\.1:\d+\/o365-audit$/);
  });
});

describe('Elasticsearch sink check', () => {
  const keyed = async (options: Parameters<typeof bulkReceiver>[0]) => {
    const receiver = await bulkReceiver(options);
    open.push(receiver);
    return new ElasticsearchSink(specFor(receiver, '&apiKeyEnv=ES_API_KEY'), { env, telemetry: new Telemetry().component('es', 'sink') });
  };

  it('says what it verified: the create_doc privilege on a secured cluster, reachability on one without security', async () => {
    expect(await (await keyed({ security: { apiKey: 'es-key-secret', writable: ['o365-audit'] } })).check()).toBe('credentials accepted, may create documents in o365-audit');
    expect(await (await keyed({})).check()).toBe('reachable (security is off: no privileges to check)');
  });

  it('a secured cluster that refuses the privileges question (403) is not taken for one without security: the first batch tells', async () => {
    const refusal = { status: 403, body: JSON.stringify({ error: { type: 'security_exception', reason: 'action [cluster:admin/xpack/security/user/has_privileges] is unauthorized for API key id [k1] of user [o365]' }, status: 403 }) };
    const verdict = await (await keyed({ security: { apiKey: 'es-key-secret', writable: ['o365-audit'] }, privilegesRefused: refusal })).check();
    expect(verdict).toBe('credentials accepted; whether they may create documents in o365-audit could not be asked (HTTP 403 to _has_privileges): the first batch tells');
    expect(verdict).not.toMatch(/security is off/);
  });
});
