import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ConfigError, ConnectorError } from '../../../../connector/core/errors.ts';
import type { SinkBatch } from '../../../../connector/core/records.ts';
import { MsalTokenProvider } from '../../../../connector/auth/token-provider.ts';
import { createLogger } from '../../../../connector/observe/log.ts';
import { Telemetry } from '../../../../connector/observe/telemetry.ts';
import type { SinkIdentity } from '../../../../connector/sinks/sink.ts';
import { createSink } from '../../../../connector/sinks/spec.ts';
import { SentinelSink } from '../../../../connector/sinks/sentinel/sentinel-sink.ts';
import { sentinelRow } from '../../../../connector/sinks/sentinel/rows.ts';
import { OcsfSink } from '../../../../connector/sinks/ocsf/ocsf-sink.ts';
import { startEmulator } from '../../../emulator/index.ts';
import { auditRecords, rawRecord } from '../records.ts';

const emulator = await startEmulator({ seed: 28 });
afterAll(() => emulator.stop());
afterEach(() => emulator.logsIngestion.reset());
const ingestion = emulator.logsIngestion;

/** The stand-in tenant's app, as `run --outputs` gives it to the sinks. */
function identity(overrides: Partial<SinkIdentity> = {}): SinkIdentity {
  return {
    cloud: 'commercial', caFile: emulator.caFile,
    sentinel: { endpoint: emulator.apiRoot, rule: ingestion.rule, stream: ingestion.stream },
    tokensFor: (audience, dispatcher) => new MsalTokenProvider({
      tenantId: emulator.tenantId, clientId: emulator.clientId, credential: { kind: 'secret', secret: emulator.clientSecret },
      authorityHost: emulator.authorityHost, apiRoot: audience, dispatcher,
    }),
    ...overrides,
  };
}

const context = (extra: { identity?: SinkIdentity | undefined } = { identity: identity() }) => ({ env: {}, telemetry: new Telemetry(), logger: createLogger({ level: 'silent' }), ...extra });
const host = new URL(emulator.apiRoot).host;
const spec = (query = '') => `sentinel://${host}?rule=${ingestion.rule}&stream=${ingestion.stream}${query}`;
const batchOf = (records = auditRecords(12)): SinkBatch => ({ contentType: 'Audit.General', records });

async function refusal(promise: Promise<unknown>): Promise<ConnectorError> {
  const error = await promise.then(() => undefined, (failure: unknown) => failure);
  expect(error).toBeInstanceOf(ConnectorError);
  return error as ConnectorError;
}

describe('Sentinel rows', () => {
  it('carry the stream\'s columns, TimeGenerated in UTC with Z, and RawData that parses back to the record\'s exact bytes', () => {
    const records = auditRecords(6);
    for (const record of records) {
      const row = JSON.parse(sentinelRow(record, 'Audit.General', 'raw').toString('utf8')) as Record<string, unknown>;
      const parsed = JSON.parse(record.bytes.toString('utf8')) as Record<string, unknown>;
      expect(Object.keys(row)).toEqual(['TimeGenerated', 'Id', 'ContentType', 'RecordType', 'Operation', 'Workload', 'UserId', 'ClientIP', 'OrganizationId', 'RawData'].filter((key) => key in row));
      expect(row['TimeGenerated']).toBe(new Date(`${parsed['CreationTime'] as string}Z`).toISOString());
      expect(row['TimeGenerated']).toMatch(/Z$/);
      expect(row['Id']).toBe(record.id);
      expect(row['RecordType']).toBe(parsed['RecordType']);
      expect(Number.isInteger(row['RecordType'])).toBe(true);
      expect(row['Operation']).toBe(parsed['Operation']);
      expect(Buffer.from(row['RawData'] as string, 'utf8').equals(record.bytes)).toBe(true);
    }
  });

  it('of OCSF events carry the event in OcsfEvent instead of RawData', () => {
    const record = rawRecord('{"Id":"0b2c","CreationTime":"2026-11-20T08:00:00","RecordType":15,"Operation":"UserLoggedIn"}');
    const row = JSON.parse(sentinelRow({ ...record, bytes: Buffer.from('{"class_uid":3002}') }, 'Audit.AzureActiveDirectory', 'ocsf').toString('utf8'));
    expect(row).toEqual({ TimeGenerated: '2026-11-20T08:00:00.000Z', Id: '0b2c', ContentType: 'Audit.AzureActiveDirectory', OcsfEvent: '{"class_uid":3002}' });
  });
});

describe('the Sentinel sink against the Logs Ingestion stand-in', () => {
  it('delivers every record once, gzip-compressed, with RawData byte-exact', async () => {
    const sink = new SentinelSink(spec(), { identity: identity() });
    try {
      const batch = batchOf();
      await sink.write(batch);
      const rows = ingestion.rows();
      expect(rows.map((row) => row['Id'])).toEqual(batch.records.map((record) => record.id));
      rows.forEach((row, index) => expect(Buffer.from(row['RawData'] as string, 'utf8').equals(batch.records[index]!.bytes)).toBe(true));
      expect(ingestion.counters.gzipped).toBe(ingestion.counters.accepted);
    } finally {
      await sink.close();
    }
  });

  it('splits a batch over 1 MB into calls within the limit, and sets aside a record whose row alone is over it', async () => {
    const telemetry = new Telemetry();
    const sink = new SentinelSink(spec('&gzip=0'), { identity: identity(), telemetry: telemetry.component('sink:sentinel', 'sink') });
    try {
      const filler = 'x'.repeat(200_000);
      const big = (n: number) => rawRecord(`{"Id":"big-${n}","CreationTime":"2026-11-20T08:00:0${n}","RecordType":6,"Operation":"FileAccessed","Notes":"${filler}"}`);
      const huge = rawRecord(`{"Id":"huge","CreationTime":"2026-11-20T08:00:00","RecordType":6,"Operation":"FileAccessed","Notes":"${'y'.repeat(1_100_000)}"}`);
      const records = [big(0), big(1), big(2), big(3), huge, big(4), big(5), big(6)];
      const setAside: Array<[string | undefined, string]> = [];
      await sink.write(batchOf(records), { setAside: (record, reason) => setAside.push([record.id, reason]) });
      expect(setAside).toEqual([['huge', expect.stringMatching(/^its row is \d+ bytes, over the 1048576 bytes one call/)]]);
      expect(ingestion.rows().map((row) => row['Id'])).toEqual(records.filter((record) => record.id !== 'huge').map((record) => record.id));
      expect(ingestion.counters.accepted).toBe(2);
      expect(ingestion.counters.largestBodyBytes).toBeLessThanOrEqual(1024 * 1024);
      const counters = telemetry.snapshot().find((component) => component.name === 'sink:sentinel');
      expect(counters).toMatchObject({ discardedRecords: 1, errorsByCode: { SENTINEL_RECORD_TOO_LARGE: 1 }, sentRecords: 7 });
      expect(counters?.lastError?.message).toContain('record huge of Audit.General set aside');
    } finally {
      await sink.close();
    }
  });

  it('repeats throttled (429), unavailable (503) and cut calls, honouring Retry-After, and delivers each row once', { timeout: 30_000 }, async () => {
    ingestion.faults = { throttleEvery: 2, unavailableEvery: 3, dropEvery: 5, retryAfterSeconds: 0 };
    const sink = new SentinelSink(spec('&maxBytes=4096'), { identity: identity() });
    try {
      const batch = batchOf(auditRecords(40));
      await sink.write(batch);
      expect(ingestion.counters.throttled).toBeGreaterThan(0);
      expect(ingestion.counters.unavailable).toBeGreaterThan(0);
      expect(ingestion.counters.dropped).toBeGreaterThan(0);
      expect(ingestion.rows().map((row) => row['Id'])).toEqual(batch.records.map((record) => record.id));
    } finally {
      await sink.close();
    }
  });

  it('a batch sent again after a failed call resumes after the calls already acknowledged (no row twice)', async () => {
    ingestion.faults = { unavailableEvery: 3, retryAfterSeconds: 0 };
    const sink = new SentinelSink(spec('&maxBytes=4096&maxAttempts=1'), { identity: identity() });
    try {
      const batch = batchOf(auditRecords(30));
      const failure = await refusal(sink.write(batch));
      expect(failure.code).toBe('HTTP503');
      expect(failure.retryable).toBe(true);
      const before = ingestion.rows().length;
      expect(before).toBeGreaterThan(0);
      ingestion.faults = {};
      await sink.write(batch);
      expect(ingestion.rows().map((row) => row['Id'])).toEqual(batch.records.map((record) => record.id));
    } finally {
      await sink.close();
    }
  });

  it('health check: proves the token, the role and the stream with an empty call that ingests nothing', async () => {
    const sink = new SentinelSink(spec(), { identity: identity() });
    try {
      await expect(sink.check()).resolves.toMatch(/Monitoring Metrics Publisher on rule dcr-[0-9a-f]{32}, stream Custom-O365Audit known/);
      expect(ingestion.counters.accepted).toBe(1);
      expect(ingestion.rows()).toEqual([]);
    } finally {
      await sink.close();
    }
  });

  it('explains a missing role (403) in one line with the fix', async () => {
    ingestion.grant(emulator.tenantId, emulator.clientId, false);
    const sink = new SentinelSink(spec(), { identity: identity() });
    try {
      const error = await refusal(sink.check());
      expect(error.toLine()).toMatch(/^SENTINEL_FORBIDDEN: the connector's identity may not send to data collection rule dcr-\w+: it lacks the Monitoring Metrics Publisher role on the rule \(HTTP 403: OperationFailed: .*\) Fix: run pulumi up with sentinelWorkspace set/);
      expect(error.retryable).toBe(false);
    } finally {
      ingestion.grant(emulator.tenantId, emulator.clientId);
      await sink.close();
    }
  });

  it('explains an unknown rule or stream (404) in one line with the fix', async () => {
    for (const wrong of [`sentinel://${host}?rule=dcr-${'0'.repeat(32)}&stream=${ingestion.stream}`, `sentinel://${host}?rule=${ingestion.rule}&stream=Custom-Other`]) {
      const sink = new SentinelSink(wrong, { identity: identity() });
      try {
        const error = await refusal(sink.write(batchOf(auditRecords(1))));
        expect(error.code).toBe('SENTINEL_NOT_FOUND');
        expect(error.toLine()).toMatch(/knows no data collection rule dcr-\w+ with a stream Custom-\w+ \(HTTP 404: (NotFound|InvalidStream): .*\) Fix: write the outputs file again after pulumi up/);
      } finally {
        await sink.close();
      }
    }
  });

  it('explains a call over the service\'s limit (413) in one line with the fix', async () => {
    ingestion.limitBytes = 2048;
    const sink = new SentinelSink(spec('&gzip=0&maxBytes=8192'), { identity: identity() });
    try {
      const error = await refusal(sink.write(batchOf(auditRecords(10))));
      expect(error.toLine()).toMatch(/^SENTINEL_TOO_LARGE: a call of \d+ bytes to rule dcr-\w+ was over the Logs Ingestion API's size limit \(HTTP 413: ContentLengthLimitExceeded: .*\) Fix: lower maxBytes in the sink spec/);
    } finally {
      await sink.close();
    }
  });

  it('refuses a token for another audience (401), renewing it once before it gives up', async () => {
    const sink = new SentinelSink(spec('&maxAttempts=2'), { identity: identity({ tokensFor: (_audience, dispatcher) => identity().tokensFor('https://graph.microsoft.com', dispatcher) }) });
    try {
      const error = await refusal(sink.check());
      expect(error.code).toBe('SENTINEL_UNAUTHORIZED');
      expect(ingestion.counters.refused['401']).toBe(2);
    } finally {
      await sink.close();
    }
  });
});

describe('the sentinel sink spec', () => {
  it('`sentinel` alone takes the endpoint, rule and stream from the outputs; format=ocsf works too', async () => {
    const sink = createSink('sentinel', context());
    expect(sink).toBeInstanceOf(SentinelSink);
    expect(sink.name).toBe(`sentinel://${host}/${ingestion.rule}/Custom-O365Audit`);
    const ocsf = createSink('sentinel?format=ocsf', context());
    expect(ocsf).toBeInstanceOf(OcsfSink);
    try {
      await ocsf.write(batchOf(auditRecords(3)));
      const rows = ingestion.rows();
      expect(rows).toHaveLength(3);
      for (const row of rows) {
        expect(Object.keys(row).sort()).toEqual(['ContentType', 'Id', 'OcsfEvent', 'TimeGenerated']);
        expect(JSON.parse(row['OcsfEvent'] as string)).toHaveProperty('class_uid');
      }
    } finally {
      await sink.close();
      await ocsf.close();
    }
  });

  it.each([
    ['commercial', 'https://monitor.azure.com'], ['gcc', 'https://monitor.azure.com'], ['gcchigh', 'https://monitor.azure.us'],
    ['dod', 'https://monitor.azure.us'], ['china', 'https://monitor.azure.cn'],
  ] as const)('asks the %s identity for tokens of Azure Monitor\'s audience %s', async (cloud, audience) => {
    const asked: string[] = [];
    const sink = new SentinelSink(spec(), { identity: identity({ cloud, tokensFor: (wanted, dispatcher) => { asked.push(wanted); return identity().tokensFor(wanted, dispatcher); } }) });
    await sink.close();
    expect(asked).toEqual([audience]);
  });

  it('refuses, in one line each, `sentinel` without the outputs, a fleet without one identity, and a wrong rule or stream', () => {
    expect(() => createSink('sentinel', context({ identity: identity({ sentinel: undefined }) }))).toThrow(expect.objectContaining({ message: expect.stringContaining('sentinel alone takes its endpoint, rule and stream from the stack outputs') }));
    expect(() => createSink(spec(), context({ identity: undefined }))).toThrow(ConfigError);
    expect(() => createSink(`sentinel://${host}?rule=/subscriptions/x&stream=Custom-O365Audit`, context())).toThrow(expect.objectContaining({ field: '--sink rule' }));
    expect(() => createSink(`sentinel://${host}?rule=${ingestion.rule}&stream=O365Audit_CL`, context())).toThrow(expect.objectContaining({ field: '--sink stream' }));
    expect(() => createSink(`${spec()}&index=x`, context())).toThrow(expect.objectContaining({ field: '--sink index' }));
  });
});
