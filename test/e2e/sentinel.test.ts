import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { contentTypes } from '../../contract/content-types.ts';
import { startEmulator } from '../emulator/index.ts';
import { exitWithin, startConnector } from './processes.ts';
import { expectExactBytes, workDir, writeOutputs } from './support.ts';

const frozen = new Date(Math.floor(Date.now() / 60_000) * 60_000);
const emulator = await startEmulator({ now: () => frozen, seed: 28, days: 1, recordsPerBlob: 10, duplicateRate: 0.2, enabledContentTypes: [...contentTypes] });
const ingestion = emulator.logsIngestion;
afterAll(() => emulator.stop());
afterEach(() => {
  ingestion.reset();
  ingestion.grant(emulator.tenantId, emulator.clientId);
});

/** An outputs file of a stack with sentinelWorkspace set, pointing at the stand-in's Logs Ingestion endpoint. */
async function sentinelOutputs(dir: string, overrides: Record<string, unknown> = {}): Promise<string> {
  return writeOutputs(emulator, dir, { ...ingestion.outputs(emulator.apiRoot), ...overrides });
}

async function cli(args: readonly string[]) {
  const run = startConnector(args, { env: { O365_LOG_LEVEL: 'warn' } });
  const code = await exitWithin(run, 120_000);
  return { code, stdout: run.stdout(), stderr: run.stderr() };
}

function oneErrorLine(stderr: string): string {
  const lines = stderr.split('\n').filter((line) => /^(error|internal error):/.test(line));
  expect(lines, stderr).toHaveLength(1);
  expect(stderr).not.toMatch(/\n\s+at /);
  return lines[0]!;
}

describe('run --sink sentinel (Azure Monitor Logs Ingestion API)', () => {
  it('backfills every record once into the stand-in\'s endpoint through throttling, 503s and a cut connection, RawData byte-exact', { timeout: 180_000 }, async () => {
    const dir = await workDir();
    ingestion.faults = { throttleEvery: 4, unavailableEvery: 7, dropEvery: 5, retryAfterSeconds: 1 };
    const result = await cli(['run', '--once', '--outputs', await sentinelOutputs(dir), '--state', join(dir, 'state'), '--requests-per-minute', '100000', '--sink', 'sentinel']);
    expect(result.code, result.stderr).toBe(0);
    expect(ingestion.counters.throttled).toBeGreaterThan(0);
    expect(ingestion.counters.unavailable).toBeGreaterThan(0);
    expect(ingestion.counters.dropped).toBeGreaterThan(0);
    const rows = ingestion.rows();
    expect(rows.length).toBeGreaterThan(100);
    // RawData parses back to the bytes the stand-in served, each record once (a repeat or a miss fails as much as a changed byte).
    expectExactBytes(rows.map((row) => Buffer.from(row['RawData'] as string, 'utf8')), emulator.groundTruthBytes());
    for (const row of rows) {
      expect(row['TimeGenerated']).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(contentTypes).toContain(row['ContentType']);
      expect(Number.isInteger(row['RecordType'])).toBe(true);
    }
    expect(ingestion.counters.gzipped).toBe(ingestion.counters.accepted);
    expect(ingestion.counters.largestWireBytes).toBeLessThanOrEqual(1024 * 1024);
  });

  it('test --sink sentinel proves the token, the role and the stream without ingesting a row', async () => {
    const dir = await workDir();
    const result = await cli(['test', '--outputs', await sentinelOutputs(dir), '--sink', 'sentinel']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`Sink sentinel://127\\.0\\.0\\.1:\\d+/${ingestion.rule}/Custom-O365Audit: ok \\(token for https://monitor\\.azure\\.com accepted, Monitoring Metrics Publisher on rule ${ingestion.rule}, stream Custom-O365Audit known`));
    expect(ingestion.rows()).toEqual([]);
  });

  it('test without the role: exit 6, one line naming the role and the fix', async () => {
    const dir = await workDir();
    ingestion.grant(emulator.tenantId, emulator.clientId, false);
    const result = await cli(['test', '--outputs', await sentinelOutputs(dir), '--sink', 'sentinel']);
    expect(result.code).toBe(6);
    expect(oneErrorLine(result.stderr)).toMatch(/^error: sink sentinel:\/\/\S+: SENTINEL_FORBIDDEN: the connector's identity may not send to data collection rule dcr-\w+: it lacks the Monitoring Metrics Publisher role on the rule \(HTTP 403: .*\) Fix: run pulumi up with sentinelWorkspace set \(it assigns the role\)/);
  });

  it('run without the role: exit 6 at the health check, one line, nothing collected', async () => {
    const dir = await workDir();
    ingestion.grant(emulator.tenantId, emulator.clientId, false);
    const result = await cli(['run', '--once', '--outputs', await sentinelOutputs(dir), '--state', join(dir, 'state'), '--sink', 'sentinel']);
    expect(result.code).toBe(6);
    expect(oneErrorLine(result.stderr)).toMatch(/SENTINEL_FORBIDDEN: .* Fix: /);
    expect(ingestion.rows()).toEqual([]);
  });

  it('an unknown rule: exit 6, one line with the fix', async () => {
    const dir = await workDir();
    const result = await cli(['test', '--outputs', await sentinelOutputs(dir, { sentinelRule: `dcr-${'a'.repeat(32)}` }), '--sink', 'sentinel']);
    expect(result.code).toBe(6);
    expect(oneErrorLine(result.stderr)).toMatch(/SENTINEL_NOT_FOUND: 127\.0\.0\.1:\d+ knows no data collection rule dcr-a{32} with a stream Custom-O365Audit \(HTTP 404: NotFound: .*\) Fix: write the outputs file again after pulumi up/);
  });

  it('--sink sentinel with outputs of a stack without sentinelWorkspace: exit 2, one line', async () => {
    const dir = await workDir();
    const result = await cli(['test', '--outputs', await writeOutputs(emulator, dir), '--sink', 'sentinel']);
    expect(result.code).toBe(2);
    expect(oneErrorLine(result.stderr)).toMatch(/^error: CONFIG_INVALID: --sink: sentinel alone takes its endpoint, rule and stream from the stack outputs.* Fix: set sentinelWorkspace on the stack and run pulumi up/);
  });
});
