import { afterAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { contentTypes } from '../../contract/content-types.ts';
import { buildStatusReport } from '../../connector/report/status-report.ts';
import { startEmulator } from '../emulator/index.ts';
import { compareFileBytes, exactBytes, workDir, writeOutputs } from './support.ts';

const root = resolve(import.meta.dirname, '../..');
const minute = 60_000;
const day = 24 * 60 * minute;
// The service's clock, moved by the test: late blobs become listable as it advances.
const start = Math.floor(Date.now() / minute) * minute;
let clock = start;
// Five days of content. A third of the blobs become listable 20 minutes to 6 days after their contentCreated, and a
// third repeat a record of a blob up to 6 days older: what users report from Microsoft.
const emulator = await startEmulator({
  now: () => new Date(clock), quotaPerMinute: 1_000_000, seed: 41, days: 5, blobIntervalMinutes: 45, recordsPerBlob: 8, pageSize: 50,
  lateBlobRate: 0.33, lateMaxMinutes: 6 * 24 * 60, duplicateRate: 0.33, duplicateMaxAgeMinutes: 6 * 24 * 60,
  enabledContentTypes: [...contentTypes], faults: { latencyMs: 5 },
});
afterAll(() => emulator.stop());

interface Run { child: ChildProcess; done: Promise<number | null>; stderr: () => string }

function startRun(outputs: string, dir: string): Run {
  const child = spawn(process.execPath, [join(root, 'connector/bin.mjs'), 'run', '--once', '--outputs', outputs, '--state', join(dir, 'state'), '--sink', `file:${join(dir, 'audit.ndjson')}`, '--requests-per-minute', '100000'], {
    env: { ...process.env, NODE_EXTRA_CA_CERTS: emulator.caFile, O365_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'pipe'], detached: true,
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  return { child, done: new Promise((r) => child.on('exit', (code) => r(code))), stderr: () => stderr };
}

const fileSize = async (file: string) => { try { return (await stat(file)).size; } catch { return 0; } };

/** A run killed (SIGKILL to its group) once it has written `bytes` more, then a restart that finishes. */
async function killedThenFinished(outputs: string, dir: string, bytes: number): Promise<boolean> {
  const sink = join(dir, 'audit.ndjson');
  const from = await fileSize(sink);
  const first = startRun(outputs, dir);
  let killed = false;
  while (first.child.exitCode === null) {
    if ((await fileSize(sink)) > from + bytes) {
      process.kill(-first.child.pid!, 'SIGKILL');
      killed = true;
      break;
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  const code = await first.done;
  if (!killed) expect(code, first.stderr()).toBe(0);
  const restart = startRun(outputs, dir);
  expect(await restart.done, restart.stderr()).toBe(0);
  return killed;
}

describe('content Microsoft lists days late, and records it repeats days apart', () => {
  it('delivers every listable record exactly once, byte for byte, across SIGKILLs, as lateness shows up over days', { timeout: 240_000 }, async () => {
    const dir = await workDir();
    const outputs = await writeOutputs(emulator, dir);
    const sink = join(dir, 'audit.ndjson');
    const kills: boolean[] = [];
    // Day 0: the backlog, killed in the middle. Later: each day some late blobs become listable, far behind the
    // checkpoint; the sweep of the next run finds them (killed in the middle too).
    kills.push(await killedThenFinished(outputs, dir, 150_000));
    expect(await compareFileBytes(sink, emulator.groundTruthBytes())).toEqual(exactBytes);
    const listableAtFirst = emulator.groundTruth().size;
    for (const advance of [1, 2]) {
      clock = start + advance * day;
      kills.push(await killedThenFinished(outputs, dir, 3_000));
      expect(await compareFileBytes(sink, emulator.groundTruthBytes())).toEqual(exactBytes);
    }
    // The test meant something: late blobs did show up after the first day, and some runs were killed mid-way.
    expect(emulator.groundTruth().size).toBeGreaterThan(listableAtFirst);
    expect(kills.filter(Boolean).length).toBeGreaterThanOrEqual(2);
    const report = await buildStatusReport({ stateDir: join(dir, 'state'), now: () => new Date(clock) });
    const late = report.contentTypes.reduce((n, r) => n + r.lateBlobs, 0);
    expect(late).toBeGreaterThan(0);
    expect(Math.max(...report.contentTypes.map((r) => r.maxLatenessSeconds))).toBeGreaterThan(day / 1000);
    expect(report.contentTypes.every((r) => r.lastSweepAt !== undefined)).toBe(true);
  });
});
