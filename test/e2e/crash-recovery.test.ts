import { afterAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { startEmulator } from '../emulator/index.ts';
import { contentTypes } from '../../connector/api/content-types.ts';
import { buildStatusReport } from '../../connector/status/status-report.ts';
import { expectExactlyOnce, recordIds, workDir, writeOutputs } from './support.ts';

const root = resolve(import.meta.dirname, '../..');
// A frozen server clock: the connector learns it from the Date header, so the corpus cannot move under the test.
// Throttling is not what this test is about (see the throttling tests and bench): the quota is far above the runs' rate.
const frozen = new Date(Math.floor(Date.now() / 60_000) * 60_000);
const emulator = await startEmulator({ now: () => frozen, quotaPerMinute: 1_000_000, seed: 9, days: 3, blobIntervalMinutes: 30, recordsPerBlob: 20, pageSize: 25, duplicateRate: 0.2, lateBlobRate: 0.1, enabledContentTypes: [...contentTypes], faults: { latencyMs: 15 } });
afterAll(() => emulator.stop());

interface Run { child: ChildProcess; done: Promise<number | null>; stderr: () => string }

function startRun(outputs: string, dir: string): Run {
  const child = spawn(process.execPath, [join(root, 'connector/bin.mjs'), 'run', '--once', '--outputs', outputs, '--state', join(dir, 'state'), '--sink', `file:${join(dir, 'audit.ndjson')}`, '--requests-per-minute', '100000'], {
    cwd: dir, env: { ...process.env, NODE_EXTRA_CA_CERTS: emulator.caFile, O365_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  const done = new Promise<number | null>((resolvePromise) => child.on('exit', (code) => resolvePromise(code)));
  return { child, done, stderr: () => stderr };
}

/** Polls a condition with a bounded deadline (never a fixed sleep). */
async function until(condition: () => Promise<boolean> | boolean, deadlineMs = 60_000): Promise<boolean> {
  const deadline = Date.now() + deadlineMs;
  while (Date.now() < deadline) {
    if (await condition()) return true;
    await new Promise((r) => setImmediate(r));
  }
  return false;
}

const fileSize = async (file: string) => { try { return (await stat(file)).size; } catch { return 0; } };
/** Newest modification among the state files: changes right after each commit's rename. */
async function stateWrittenAt(dir: string): Promise<number> {
  try {
    const names = (await readdir(dir)).filter((n) => n.endsWith('.json'));
    const times = await Promise.all(names.map(async (n) => (await stat(join(dir, n))).mtimeMs));
    return Math.max(0, ...times);
  } catch { return 0; }
}

describe('crash recovery', () => {
  it('holds every record exactly once after SIGKILLs mid-write, mid-fetch and right after state writes', { timeout: 240_000 }, async () => {
    const dir = await workDir();
    const outputs = await writeOutputs(emulator, dir);
    const sink = join(dir, 'audit.ndjson');
    const stateDir = join(dir, 'state');
    const afterStateWrite = () => { let first = -1; return async () => { const m = await stateWrittenAt(stateDir); if (first < 0) { first = m; return false; } return m !== first; }; };
    const midFetch = () => { const served = emulator.counters().blobsServed; return () => emulator.counters().blobsServed > served + 30 && emulator.counters().inFlight > 0; };
    const killPoints: Array<{ name: string; make: () => () => Promise<boolean> | boolean }> = [
      // Before the first commit, inside the first (large) batch: the file holds bytes no state accounts for.
      { name: 'first batch, before any state', make: () => async () => (await fileSize(sink)) > 50_000 },
      { name: 'right after a state write', make: afterStateWrite },
      { name: 'mid-fetch', make: midFetch },
      { name: 'after N records, small batches', make: () => { let start = -1; return async () => { const size = await fileSize(sink); if (start < 0) start = size; return size > start + 300_000; }; } },
      { name: 'right after a state write, again', make: afterStateWrite },
    ];
    const killed: string[] = [];
    for (const point of killPoints) {
      const run = startRun(outputs, dir);
      const condition = point.make();
      const reached = await Promise.race([until(condition), run.done.then(() => false)]);
      if (reached && run.child.exitCode === null) {
        run.child.kill('SIGKILL');
        killed.push(point.name);
      }
      const code = await run.done;
      if (code !== null) expect(code, run.stderr()).toBe(0);
    }
    const final = startRun(outputs, dir);
    expect(await final.done, final.stderr()).toBe(0);
    expect(killed.length, `killed at: ${killed.join(', ')}`).toBeGreaterThanOrEqual(4);
    const truth = emulator.groundTruth();
    expect(expectExactlyOnce(await recordIds(sink), truth)).toEqual({ missing: 0, duplicated: 0, extra: 0 });
    const report = await buildStatusReport({ stateDir, now: () => frozen });
    expect(report.contentTypes.reduce((n, r) => n + r.recordsDelivered, 0)).toBe(truth.size);
  });
});
