import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { startEmulator } from '../emulator/index.ts';
import { expectExactBytes, fileLines, workDir, writeOutputs } from './support.ts';

const root = resolve(import.meta.dirname, '../..');
const frozen = new Date(Math.floor(Date.now() / 60_000) * 60_000);
const minute = 60_000;
// The stand-in counts its quota per minute of elapsed time; the test sets where that minute ends (see below).
let quotaPhaseMs = 0;
const emulator = await startEmulator({
  now: () => frozen, quotaPerMinute: 100, elapsedMs: () => performance.now() + quotaPhaseMs,
  seed: 22, days: 1, blobIntervalMinutes: 12, recordsPerBlob: 6, duplicateRate: 0.1, enabledContentTypes: ['Audit.General'],
});
afterAll(() => emulator.stop());

function cli(args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(join(root, 'bin/o365-connector'), args, {
    env: { ...process.env, NODE_EXTRA_CA_CERTS: emulator.caFile, O365_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk; });
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk; });
  return new Promise((resolveRun) => child.once('close', (code) => resolveRun({ code, stdout, stderr })));
}

describe('a tenant whose quota is 100 requests a minute', () => {
  it('run --once delivers every record exactly once and exits 0, only slower; status shows the rate it learned', { timeout: 150_000 }, async () => {
    const dir = await workDir();
    const outputs = await writeOutputs(emulator, dir);
    const state = join(dir, 'state');
    // About 125 requests (a start, two list pages, 120 blobs): the first minute's 100 are spent within seconds, the
    // rest must wait for the next minute. Let that minute begin 15 s from now, so that the test waits 15 s, not 60.
    quotaPhaseMs = ((45_000 - (performance.now() % minute)) % minute + minute) % minute;
    const run = await cli(['run', '--once', '--outputs', outputs, '--state', state, '--since', '2d', '--content-types', 'Audit.General', '--sink', `file:${join(dir, 'audit.ndjson')}`]);
    const logs = run.stderr.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as { level: number; msg: string; code?: string; learnedPerMinute?: number });

    expect(run.code, run.stderr.slice(-2000)).toBe(0);
    expectExactBytes(await fileLines(join(dir, 'audit.ndjson')), emulator.groundTruthBytes('Audit.General'));
    expect(emulator.counters().throttled).toBeGreaterThan(0);
    // Throttling is no error: nothing was logged at error level, and each congestion event said what rate it learned.
    expect(logs.filter((entry) => entry.level >= 50)).toEqual([]);
    const throttled = logs.filter((entry) => entry.code === 'AF429');
    expect(throttled.length).toBeGreaterThan(0);
    expect(throttled[0]!.msg).toMatch(/the tenant is throttled \(AF429\): .* the connector now asks \d+ a minute/);

    const status = await cli(['status', '--state', state, '--json']);
    const report = JSON.parse(status.stdout) as { apiRate?: { perMinute: number; learnedPerMinute?: number; throttled: number } };
    // A run this short learns once, less than a minute after its start, from the rate at which the quota went (the unit
    // tests of request-budget.ts show it settling on the quota itself over longer runs): at least the quota, well under 2,000.
    expect(report.apiRate?.learnedPerMinute).toBeGreaterThanOrEqual(80);
    expect(report.apiRate?.learnedPerMinute).toBeLessThan(1000);
    expect(report.apiRate?.perMinute).toBeLessThanOrEqual(report.apiRate!.learnedPerMinute!);
    expect(report.apiRate?.throttled).toBeGreaterThan(0);
    const text = await cli(['status', '--state', state]);
    expect(text.stdout).toMatch(/^Request rate: \d+\/min at .*throttled .*the service took about \d+\/min/m);
  });
});
