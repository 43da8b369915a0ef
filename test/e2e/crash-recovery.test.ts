import { afterAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { startEmulator } from '../emulator/index.ts';
import { contentTypes } from '../../connector/api/content-types.ts';
import { expectExactlyOnce, recordIds, workDir, writeOutputs } from './support.ts';

const root = resolve(import.meta.dirname, '../..');
// A frozen server clock: the connector learns it from the Date header, so the corpus cannot move under the test.
const frozen = new Date(Math.floor(Date.now() / 60_000) * 60_000);
const emulator = await startEmulator({ now: () => frozen, seed: 9, days: 3, blobIntervalMinutes: 30, recordsPerBlob: 20, pageSize: 25, duplicateRate: 0.2, lateBlobRate: 0.1, enabledContentTypes: [...contentTypes], faults: { latencyMs: 15 } });
afterAll(() => emulator.stop());

function startRun(outputs: string, dir: string): { child: ChildProcess; done: Promise<number | null> } {
  const child = spawn(process.execPath, [join(root, 'connector/bin.mjs'), 'run', '--once', '--outputs', outputs, '--state', join(dir, 'state'), '--sink', `file:${join(dir, 'audit.ndjson')}`, '--requests-per-minute', '100000'], {
    cwd: dir, env: { ...process.env, NODE_EXTRA_CA_CERTS: emulator.caFile, O365_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'pipe'],
  });
  child.stderr!.resume();
  const done = new Promise<number | null>((resolvePromise) => child.on('exit', (code) => resolvePromise(code)));
  return { child, done };
}

async function until(condition: () => Promise<boolean>, deadlineMs = 60_000): Promise<boolean> {
  const deadline = Date.now() + deadlineMs;
  while (Date.now() < deadline) {
    if (await condition()) return true;
    await new Promise((r) => setImmediate(r));
  }
  return false;
}

const fileSize = async (file: string) => { try { return (await stat(file)).size; } catch { return 0; } };
const mtime = async (file: string) => { try { return (await stat(file)).mtimeMs; } catch { return 0; } };

describe('crash recovery', () => {
  it('holds every record exactly once after SIGKILLs mid-write and right after state saves', { timeout: 180_000 }, async () => {
    const dir = await workDir();
    const outputs = await writeOutputs(emulator, dir);
    const sink = join(dir, 'audit.ndjson');
    const stateFile = join(dir, 'state', 'Audit.Exchange.json');
    const killPoints: Array<() => Promise<boolean>> = [
      async () => (await fileSize(sink)) > 50_000,
      async () => (await fileSize(sink)) > 400_000,
      (() => { let first = 0; return async () => { const m = await mtime(stateFile); if (!first) { first = m; return false; } return m !== first; }; })(),
      async () => (await fileSize(sink)) > 1_500_000,
    ];
    let kills = 0;
    for (const point of killPoints) {
      const { child, done } = startRun(outputs, dir);
      const reached = await Promise.race([until(point), done.then(() => false)]);
      if (reached && child.exitCode === null) {
        child.kill('SIGKILL');
        kills += 1;
      }
      await done;
    }
    const final = startRun(outputs, dir);
    expect(await final.done).toBe(0);
    expect(kills).toBeGreaterThanOrEqual(3);
    const truth = emulator.groundTruth();
    expect(expectExactlyOnce(await recordIds(sink), truth)).toEqual({ missing: 0, duplicated: 0, extra: 0 });
  });
});
