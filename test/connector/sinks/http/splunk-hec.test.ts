import { afterEach, describe, expect, it } from 'vitest';
import { SplunkHecSink, hecTime } from '../../../../connector/sinks/http/splunk-hec.ts';
import type { ConnectorError } from '../../../../connector/core/errors.ts';
import { Telemetry } from '../../../../connector/observe/telemetry.ts';
import { hecReceiver, type HecReceiver, type HecReceiverOptions } from '../../../receivers/http-receivers.ts';
import { auditRecords, fixtureRecords, lines, rawRecord } from '../records.ts';
import type { RawRecord } from '../../../../connector/core/records.ts';
import { createSink } from '../../../../connector/sinks/spec.ts';
import { createLogger } from '../../../../connector/observe/log.ts';

const token = 'hec-00000000-1111-2222-3333-444444444444';
const env = { SPLUNK_HEC_TOKEN: token };
const open: HecReceiver[] = [];
afterEach(async () => { await Promise.all(open.splice(0).map((r) => r.close())); });

async function splunk(options: HecReceiverOptions & { token?: string } = {}): Promise<HecReceiver> {
  const receiver = await hecReceiver(options.token ?? token, options);
  open.push(receiver);
  return receiver;
}
const specFor = (receiver: HecReceiver, query = '') => `splunk-hec://127.0.0.1:${new URL(receiver.url).port}?tls=0&insecure=1&tokenEnv=SPLUNK_HEC_TOKEN${query}`;
/** The `event` of each event line HEC received, as the bytes on the wire (the envelope puts it last). */
const eventBytes = (receiver: HecReceiver) => receiver.requests.filter((r) => r.url === '/services/collector/event')
  .flatMap((r) => lines(r.raw)).map((line) => line.subarray(line.indexOf(',"event":') + ',"event":'.length, -1));
const sameBytes = (got: Buffer[], sent: readonly RawRecord[]) => got.length === sent.length && got.every((bytes, i) => bytes.equals(sent[i]!.bytes));

describe('Splunk HEC sink', () => {
  it.each([
    ['format=ocsf sends OCSF events under sourcetype o365:ocsf', '&format=ocsf', 'o365:ocsf'],
    ['format=ocsf with sourcetype= keeps the sourcetype given', '&format=ocsf&sourcetype=ocsf:custom', 'ocsf:custom'],
    ['raw records keep the sourcetype of their content type', '&format=raw', 'o365:audit:sharepoint'],
  ])('%s', async (_title, query, sourcetype) => {
    const receiver = await splunk();
    const sink = createSink(specFor(receiver, query), { env, telemetry: new Telemetry(), logger: createLogger({ level: 'silent' }) });
    await sink.write({ contentType: 'Audit.SharePoint', records: fixtureRecords.slice(2, 4) });
    await sink.close();
    expect(receiver.events.map((e) => e.sourcetype)).toEqual([sourcetype, sourcetype]);
  });

  it('sends events with time from the zone-less CreationTime read as UTC, sourcetype per content type, index, host and the Splunk token', async () => {
    const receiver = await splunk();
    const sink = new SplunkHecSink(specFor(receiver, '&index=o365&host=tenant-contoso&maxRecords=2'), { env });
    await sink.write({ contentType: 'Audit.SharePoint', records: fixtureRecords.slice(2, 5) });
    await sink.write({ contentType: 'DLP.All', records: auditRecords(1, 'dlp') });
    await sink.close();
    expect(receiver.requests.map((r) => r.body.split('\n').length)).toEqual([2, 1, 1]);
    expect(receiver.requests[0]!.url).toBe('/services/collector/event');
    expect(receiver.requests[0]!.headers.authorization).toBe(`Splunk ${token}`);
    // fixtureRecords[2] is the FileDeleted of 06-sharepointfileop.jsonl, CreationTime "2026-02-17T14:26:05".
    const envelope = `{"time":${Date.UTC(2026, 1, 17, 14, 26, 5) / 1000},"host":"tenant-contoso","source":"o365-connector","sourcetype":"o365:audit:sharepoint","index":"o365","event":`;
    expect(lines(receiver.requests[0]!.raw)[0]!.equals(Buffer.concat([Buffer.from(envelope), fixtureRecords[2]!.bytes, Buffer.from('}')]))).toBe(true);
    expect(sameBytes(eventBytes(receiver), [...fixtureRecords.slice(2, 5), ...auditRecords(1, 'dlp')])).toBe(true);
    expect(receiver.events.map((e) => e.sourcetype)).toEqual(['o365:audit:sharepoint', 'o365:audit:sharepoint', 'o365:audit:sharepoint', 'o365:dlp:all']);
    expect(hecTime('2026-11-25T10:00:00')).toBe(Date.UTC(2026, 10, 25, 10) / 1000);
    expect(hecTime('2026-11-25T10:00:00.250Z')).toBe(Date.UTC(2026, 10, 25, 10, 0, 0, 250) / 1000);
    // A day that does not exist is no time at all (HEC then stamps the event), not the date parser's next month.
    expect(hecTime('2026-02-30T10:00:00')).toBeUndefined();
  });

  it('sends each record as the bytes it was given, and leaves time out for a record without a CreationTime', async () => {
    const receiver = await splunk();
    const sink = new SplunkHecSink(specFor(receiver, '&maxRecords=4'), { env });
    const sent = [...auditRecords(9), rawRecord('{"Id":"no-time","Size":12345678901234567890,"Ratio":1.0}'), rawRecord('{"CreationTime":20261125}')];
    await sink.write({ contentType: 'Audit.Exchange', records: sent });
    await sink.close();
    expect(sameBytes(eventBytes(receiver), sent)).toBe(true);
    expect(lines(receiver.requests[2]!.raw).map(String)).toEqual([
      `{"time":${hecTime(sent[8]!.creationTime)},"source":"o365-connector","sourcetype":"o365:audit:exchange","event":${sent[8]!.bytes.toString()}}`,
      '{"source":"o365-connector","sourcetype":"o365:audit:exchange","event":{"Id":"no-time","Size":12345678901234567890,"Ratio":1.0}}',
      '{"source":"o365-connector","sourcetype":"o365:audit:exchange","event":{"CreationTime":20261125}}',
    ]);
  });

  it.each([
    [9, 503, 'Server is busy'],
    [8, 500, 'Internal server error'],
    [18, 503, 'HEC is unhealthy, queues are full'],
  ])('retries HEC code %i (HTTP %i) and then acknowledges', async (code, status, text) => {
    const receiver = await splunk();
    receiver.script({ status, body: JSON.stringify({ text, code }) }, { status, body: JSON.stringify({ text, code }) });
    const telemetry = new Telemetry();
    const sink = new SplunkHecSink(specFor(receiver), { env, telemetry: telemetry.component('hec', 'sink') });
    await sink.write({ contentType: 'Audit.General', records: auditRecords(2) });
    await sink.close();
    expect(receiver.attempts()).toBe(3);
    expect(sameBytes(eventBytes(receiver), auditRecords(2))).toBe(true);
    expect(telemetry.snapshot()[0]).toMatchObject({ sentRecords: 2, errors: 2, errorsByCode: { [`HEC${code}`]: 2 } });
  });

  it('rejects as retryable after maxAttempts while Splunk stays busy', async () => {
    const receiver = await splunk();
    receiver.script(...Array.from({ length: 3 }, () => ({ status: 503, body: '{"text":"Server is busy","code":9}', headers: { 'retry-after': '0' } })));
    const sink = new SplunkHecSink(specFor(receiver, '&maxAttempts=3'), { env });
    await expect(sink.write({ contentType: 'Audit.General', records: auditRecords(2) })).rejects.toMatchObject({ code: 'HEC9', retryable: true });
    await sink.close();
  });

  it.each([
    ['an invalid token', { token: 'another-token' }, '', 'HEC4', /^HEC4: Splunk HEC splunk-hec:\/\/127\.0\.0\.1:\d+: the HEC token is invalid \(HTTP 403\)\. Fix: check the token named by tokenEnv$/],
    ['an index the token may not use', { indexes: ['main'] }, '&index=secret', 'HEC7', /the index does not exist or the token may not write to it at event 0 \(record rec-000000\) \(HTTP 400\)\. Fix: create the index or allow it on the token/],
    ['a token with indexer acknowledgement on', { ack: true }, '', 'HEC10', /requires a data channel.*Fix: add ack=1 to the sink spec/],
  ] as const)('refuses for good, with the HEC code and the fix, on %s', async (_what, options, query, code, line) => {
    const receiver = await splunk(options);
    const sink = new SplunkHecSink(specFor(receiver, query), { env });
    const error = await sink.write({ contentType: 'Audit.General', records: auditRecords(2) }).catch((e: ConnectorError) => e);
    await sink.close();
    expect(error).toMatchObject({ code, retryable: false });
    expect((error as ConnectorError).toLine()).toMatch(line);
    expect((error as ConnectorError).toLine()).not.toContain(token);
    expect(receiver.attempts()).toBe(1);
  });

  it('reports a disabled token (code 1) as final', async () => {
    const receiver = await splunk();
    receiver.script({ status: 403, body: '{"text":"Token disabled","code":1}' });
    const sink = new SplunkHecSink(specFor(receiver), { env });
    await expect(sink.write({ contentType: 'Audit.General', records: auditRecords(1) })).rejects.toMatchObject({ code: 'HEC1', retryable: false, fix: expect.stringMatching(/enable the token/) });
    await sink.close();
  });

  describe('with indexer acknowledgement (ack=1)', () => {
    it('acknowledges the batch only once Splunk reports every ackId indexed', async () => {
      const receiver = await splunk({ ack: true, pollsBeforeIndexed: 2 });
      const telemetry = new Telemetry();
      const sink = new SplunkHecSink(specFor(receiver, '&ack=1&maxRecords=10'), { env, telemetry: telemetry.component('hec', 'sink') });
      await sink.write({ contentType: 'Audit.Exchange', records: auditRecords(25) });
      await sink.close();
      const channels = new Set(receiver.requests.map((r) => r.headers['x-splunk-request-channel']));
      expect(channels.size).toBe(1);
      expect([...channels][0]).toMatch(/^[0-9a-f-]{36}$/);
      expect(receiver.requests.filter((r) => r.url === '/services/collector/event')).toHaveLength(3);
      expect(receiver.ackQueries()).toBe(3);
      expect(sameBytes(eventBytes(receiver), auditRecords(25))).toBe(true);
      expect(telemetry.snapshot()[0]).toMatchObject({ sentRecords: 25 });
    });

    it('sends the batch again when Splunk never confirms indexing within ackTimeoutMs', async () => {
      const receiver = await splunk({ ack: true });
      receiver.loseNextAck();
      const sink = new SplunkHecSink(specFor(receiver, '&ack=1&ackTimeoutMs=300'), { env });
      const sent = auditRecords(3);
      await expect(sink.write({ contentType: 'Audit.General', records: sent })).rejects.toMatchObject({ code: 'HEC_ACK_TIMEOUT', retryable: true });
      expect(receiver.events).toHaveLength(0);
      await sink.write({ contentType: 'Audit.General', records: sent });
      await sink.close();
      expect(receiver.events.map((e) => e.event['Id'])).toEqual(sent.map((r) => r.id));
      // Sent twice: the batch Splunk lost, then the same bytes again.
      expect(sameBytes(eventBytes(receiver), [...sent, ...sent])).toBe(true);
    });

    it('says to remove ack=1 when the token has acknowledgement off', async () => {
      const receiver = await splunk();
      const sink = new SplunkHecSink(specFor(receiver, '&ack=1'), { env });
      await expect(sink.write({ contentType: 'Audit.General', records: auditRecords(1) })).rejects.toMatchObject({ code: 'HEC14', retryable: false, fix: expect.stringMatching(/remove ack=1/) });
      await sink.close();
    });
  });
});
