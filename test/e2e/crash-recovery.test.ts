import { afterAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { startEmulator } from '../emulator/index.ts';
import { contentTypes } from '../../contract/content-types.ts';
import { buildStatusReport } from '../../connector/report/status-report.ts';
import { compareFileBytes, exactBytes, workDir, writeOutputs } from './support.ts';

const root = resolve(import.meta.dirname, '../..');
// A frozen server clock: the connector learns it from the Date header, so the corpus cannot move under the test.
// Throttling is not what this test is about (see the throttling tests and bench): the quota is far above the runs' rate.
const frozen = new Date(Math.floor(Date.now() / 60_000) * 60_000);
const emulator = await startEmulator({ now: () => frozen, quotaPerMinute: 1_000_000, seed: 9, days: 3, blobIntervalMinutes: 30, recordsPerBlob: 20, pageSize: 25, duplicateRate: 0.2, lateBlobRate: 0.1, enabledContentTypes: [...contentTypes], faults: { latencyMs: 15 } });
afterAll(() => emulator.stop());

interface Run { child: ChildProcess; done: Promise<number | null>; stderr: () => string }

/** `run --once` as a supervisor starts it: its own process group, so the whole group can be killed at once. */
function startRun(outputs: string, dir: string, env: NodeJS.ProcessEnv = {}): Run {
  const child = spawn(process.execPath, [join(root, 'connector/bin.mjs'), 'run', '--once', '--outputs', outputs, '--state', join(dir, 'state'), '--sink', `file:${join(dir, 'audit.ndjson')}`, '--requests-per-minute', '100000'], {
    cwd: dir, env: { ...process.env, NODE_EXTRA_CA_CERTS: emulator.caFile, O365_LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'ignore', 'pipe'], detached: true,
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
/** The write-ahead log changes on every commit (the store's one transaction per batch). */
async function stateWrittenAt(dir: string): Promise<number> {
  try { return (await stat(join(dir, 'state.db-wal'))).mtimeMs; } catch { return 0; }
}

/** The end state every scenario must reach: each record of the service exactly once in the file, byte for byte. */
async function expectExactlyOnce(dir: string, outputs: string): Promise<void> {
  const final = startRun(outputs, dir);
  expect(await final.done, final.stderr()).toBe(0);
  expect(await compareFileBytes(join(dir, 'audit.ndjson'), emulator.groundTruthBytes())).toEqual(exactBytes);
  const report = await buildStatusReport({ stateDir: join(dir, 'state'), now: () => frozen });
  expect(report.contentTypes.reduce((n, r) => n + r.recordsDelivered, 0)).toBe(emulator.groundTruth().size);
}

describe('crash recovery', () => {
  it('holds every record exactly once, byte for byte, after SIGKILLs mid-write, mid-fetch and right after commits', { timeout: 240_000 }, async () => {
    const dir = await workDir();
    const outputs = await writeOutputs(emulator, dir);
    const sink = join(dir, 'audit.ndjson');
    const stateDir = join(dir, 'state');
    const afterCommit = () => { let first = -1; return async () => { const m = await stateWrittenAt(stateDir); if (first < 0) { first = m; return false; } return m !== first; }; };
    const midFetch = () => { const served = emulator.counters().blobsServed; return () => emulator.counters().blobsServed > served + 30 && emulator.counters().inFlight > 0; };
    const killPoints: Array<{ name: string; make: () => () => Promise<boolean> | boolean }> = [
      // Before the first commit, inside the first (large) batch: the file holds bytes no state accounts for.
      { name: 'first batch, before any state', make: () => async () => (await fileSize(sink)) > 50_000 },
      { name: 'right after a commit', make: afterCommit },
      { name: 'mid-fetch', make: midFetch },
      { name: 'after N records, small batches', make: () => { let start = -1; return async () => { const size = await fileSize(sink); if (start < 0) start = size; return size > start + 300_000; }; } },
      { name: 'right after a commit, again', make: afterCommit },
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
    expect(killed.length, `killed at: ${killed.join(', ')}`).toBeGreaterThanOrEqual(4);
    await expectExactlyOnce(dir, outputs);
  });

  it('restarts at once after the whole process group is killed, without waiting for the killed one to be reaped', { timeout: 240_000 }, async () => {
    const dir = await workDir();
    const outputs = await writeOutputs(emulator, dir);
    const sink = join(dir, 'audit.ndjson');
    let restarts = 0;
    let previous = startRun(outputs, dir);
    for (let kill = 0; kill < 4; kill += 1) {
      const from = await fileSize(sink);
      const reached = await Promise.race([until(async () => (await fileSize(sink)) > from + 80_000), previous.done.then(() => false)]);
      if (!reached || previous.child.exitCode !== null) break;
      // As a supervisor does: SIGKILL to the group, then start the successor in the same tick; the killed process
      // is neither awaited nor reaped before the successor opens the state.
      process.kill(-previous.child.pid!, 'SIGKILL');
      const successor = startRun(outputs, dir);
      restarts += 1;
      expect(await previous.done).toBeNull();
      previous = successor;
    }
    expect(await previous.done, previous.stderr()).toBe(0);
    expect(previous.stderr()).not.toMatch(/STATE_LOCKED/);
    expect(restarts).toBeGreaterThanOrEqual(2);
    await expectExactlyOnce(dir, outputs);
  });

  it('starts while its killed predecessor is still a zombie that nobody has reaped', { timeout: 120_000 }, async () => {
    const dir = await workDir();
    const outputs = await writeOutputs(emulator, dir);
    // The connector runs under a parent that never waits for it (sleep), so once killed it stays a zombie: its pid
    // is still taken, as when a supervisor restarts at once and reaps later.
    const args = [join(root, 'connector/bin.mjs'), 'run', '--once', '--outputs', outputs, '--state', join(dir, 'state'), '--sink', `file:${join(dir, 'audit.ndjson')}`, '--requests-per-minute', '100000'];
    const quoted = [process.execPath, ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
    const parent = spawn('sh', ['-c', `${quoted} 2>/dev/null & echo $!; exec sleep 600`], {
      cwd: dir, env: { ...process.env, NODE_EXTRA_CA_CERTS: emulator.caFile, O365_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'ignore'], detached: true,
    });
    try {
      const pid = Number((await new Promise<Buffer>((r) => parent.stdout!.once('data', r))).toString().trim());
      await until(async () => (await fileSize(join(dir, 'audit.ndjson'))) > 50_000);
      process.kill(pid, 'SIGKILL');
      const zombie = () => { try { return /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8')); } catch { return false; } };
      expect(await until(zombie, 10_000)).toBe(true);
      await expectExactlyOnce(dir, outputs);
      expect(zombie()).toBe(true); // it was a zombie for the whole of the successor's run
    } finally {
      process.kill(-parent.pid!, 'SIGKILL');
    }
  });

  it('is not blocked by a lock left by a dead process, even when its pid now belongs to another live process', { timeout: 120_000 }, async () => {
    const dir = await workDir();
    const outputs = await writeOutputs(emulator, dir);
    const first = startRun(outputs, dir);
    await until(async () => (await fileSize(join(dir, 'audit.ndjson'))) > 50_000);
    process.kill(-first.child.pid!, 'SIGKILL');
    await first.done;
    // The previous release's lock named a pid; after a reboot that pid belongs to someone else (here: this test).
    await writeFile(join(dir, 'state', 'lock'), String(process.pid));
    const started = Date.now();
    await expectExactlyOnce(dir, outputs);
    expect(Date.now() - started).toBeLessThan(60_000);
  });

  it('loses and repeats nothing when killed in the middle of a commit transaction', { timeout: 240_000 }, async () => {
    const dir = await workDir();
    const outputs = await writeOutputs(emulator, dir);
    const crashed: number[] = [];
    // The failpoint SIGKILLs the process after the n-th commit's statements, before its COMMIT: sink bytes are
    // written and acknowledged, the state does not say so.
    for (const n of [2, 5, 9]) {
      const run = startRun(outputs, dir, { O365_FAILPOINT: `commit-mid-transaction:${n}` });
      await run.done;
      if (run.child.signalCode === 'SIGKILL') crashed.push(n);
    }
    expect(crashed.length, `crashed at commits ${crashed.join(', ')}`).toBeGreaterThanOrEqual(2);
    await expectExactlyOnce(dir, outputs);
  });
});
