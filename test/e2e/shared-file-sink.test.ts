import { afterAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { startEmulator } from '../emulator/index.ts';
import { compareFileBytes, exactBytes, workDir, writeOutputs } from './support.ts';

const root = resolve(import.meta.dirname, '../..');
const frozen = new Date(Math.floor(Date.now() / 60_000) * 60_000);
// One content type per connector; latency so that the first is still running when the second starts.
const emulator = await startEmulator({
  now: () => frozen, quotaPerMinute: 1_000_000, seed: 31, days: 1, blobIntervalMinutes: 15, recordsPerBlob: 20, pageSize: 25,
  duplicateRate: 0, lateBlobRate: 0, faults: { latencyMs: 30 },
});
afterAll(() => emulator.stop());

interface Run { child: ChildProcess; exit: Promise<number | null>; stderr: () => string }

function connector(dir: string, state: string, contentType: string, sink: string, extra: string[] = []): Run {
  const child = spawn(join(root, 'bin/o365-connector'), ['run', ...extra, '--outputs', join(dir, 'outputs.json'), '--state', join(dir, state), '--sink', `file:${sink}`, '--content-types', contentType], {
    env: { ...process.env, NODE_EXTRA_CA_CERTS: emulator.caFile, O365_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  return { child, exit: new Promise((resolveExit) => child.once('exit', (code) => resolveExit(code))), stderr: () => stderr };
}

describe('two connectors given the same file sink', () => {
  it('never lets one cut the other\'s records: the second is refused while the first runs, and both end with every record once', { timeout: 120_000 }, async () => {
    const dir = await workDir();
    await writeOutputs(emulator, dir);
    const sink = join(dir, 'audit.ndjson');
    const a = connector(dir, 'a', 'Audit.Exchange', sink);
    await expect.poll(() => stat(sink).then((s) => s.size, () => 0), { timeout: 60_000, interval: 20 }).toBeGreaterThan(0);
    const b = connector(dir, 'b', 'Audit.SharePoint', sink, ['--once', '--state-lock-wait', '1']);
    expect(await b.exit).toBe(6);
    expect(b.stderr().trim()).toBe(`error: SINK_LOCKED: ${sink} is being written by another running connector. Fix: give each connector its own file: a file sink belongs to one connector at a time`);
    a.child.kill('SIGTERM');
    expect(await a.exit, a.stderr()).toBe(0);
    // In turn they share it: B appends, then A resumes after B's records (its own run ended at its checkpoint).
    const bAgain = connector(dir, 'b', 'Audit.SharePoint', sink, ['--once']);
    expect(await bAgain.exit, bAgain.stderr()).toBe(0);
    const aAgain = connector(dir, 'a', 'Audit.Exchange', sink, ['--once']);
    expect(await aAgain.exit, aAgain.stderr()).toBe(0);
    const truth = new Map([...emulator.groundTruthBytes('Audit.Exchange'), ...emulator.groundTruthBytes('Audit.SharePoint')]);
    expect(await compareFileBytes(sink, truth)).toEqual(exactBytes);
  });
});
