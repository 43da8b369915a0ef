import { afterEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { openStateStore } from './open-store.ts';
import type { RecordKey } from '../../../connector/core/commit.ts';
import { workDir } from '../../e2e/support.ts';

const childScript = join(import.meta.dirname, 'store-child.ts');

/** The records of the child's n-th commit (see store-child.ts). */
const childKeys = (n: number): RecordKey[] => Array.from({ length: 100 }, (_, i) => ({ id: `id-${n}-${i}`, creationTime: `2026-11-25T08:5${n}:${String(i % 60).padStart(2, '0')}` }));

interface Child { process: ChildProcess; stdout: () => string; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> }

const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

/** Another connector process on `dir` (see store-child.ts); resolves once its output contains `ready`. */
async function startChild(mode: 'hold' | 'commit', dir: string, ready: string, env: NodeJS.ProcessEnv = {}, lockWaitMs = '10000'): Promise<Child> {
  const child = spawn(process.execPath, [childScript, mode, dir, lockWaitMs], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  const exited = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null }));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stdout.includes(ready)) resolve();
    });
    void exited.then(({ code, signal }) => { if (!stdout.includes(ready)) reject(new Error(`child exited (${code ?? signal}) before "${ready}": ${stderr}`)); });
  });
  return { process: child, stdout: () => stdout, exited };
}

describe('state store across processes', () => {
  it('refuses a second connector while the first runs, and admits one right after the first is SIGKILLed', async () => {
    const dir = await workDir();
    const first = await startChild('hold', dir, 'open');
    await expect(openStateStore(dir, { lockWaitMs: 100 })).rejects.toMatchObject({
      code: 'STATE_LOCKED', message: `state directory ${dir} is in use by another running connector`,
    });
    // As a supervisor does: kill, and start again at once, without waiting to reap the old process.
    first.process.kill('SIGKILL');
    const second = await openStateStore(dir, { lockWaitMs: 5_000 });
    await second.close();
    expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });
  });

  it('waits for a predecessor that still holds the lock and takes it as soon as that one dies', async () => {
    const dir = await workDir();
    const first = await startChild('hold', dir, 'open');
    let waiting!: () => void;
    const startedWaiting = new Promise<void>((resolve) => { waiting = resolve; });
    const opening = openStateStore(dir, { lockWaitMs: 20_000, onLockWait: () => waiting() });
    await startedWaiting; // it found the lock taken and is retrying
    first.process.kill('SIGKILL');
    const store = await opening;
    await store.close();
  });

  it('keeps a connector in another process out while this process holds the directory', async () => {
    const dir = await workDir();
    const store = await openStateStore(dir, { lockWaitMs: 0 });
    try {
      const refused = await startChild('hold', dir, 'locked', {}, '100');
      expect(await refused.exited).toEqual({ code: 3, signal: null });
    } finally {
      await store.close();
    }
    const admitted = await startChild('hold', dir, 'open', {}, '0');
    admitted.process.kill('SIGKILL');
    await admitted.exited;
  });

  it('loses nothing and half-applies nothing when killed between a commit\'s statements and its COMMIT', async () => {
    const dir = await workDir();
    const child = spawn(process.execPath, [childScript, 'commit', dir], { env: { ...process.env, O365_FAILPOINT: 'commit-mid-transaction:2' }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let stdout = '';
    child.stdout!.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
    const [code, signal] = await once(child, 'exit');
    expect({ code, signal, stdout }).toEqual({ code: null, signal: 'SIGKILL', stdout: 'committed 1\n' });
    // The next open finds commit 1 whole and nothing of commit 2.
    const store = await openStateStore(dir, { lockWaitMs: 5_000 });
    try {
      expect((await store.cursors()).get('Audit.General')).toMatchObject({ checkpoint: '2026-11-25T09:01:00.000Z', recordsDelivered: 100, blobsDelivered: 1, updatedAt: '2026-11-25T10:01:00.000Z' });
      expect(await store.sinkPositions()).toEqual({ 'file:/var/log/o365.ndjson': 1000 });
      expect((await store.seenRecords('Audit.General', childKeys(1))).size).toBe(100);
      const second = childKeys(2);
      expect(await store.seenRecords('Audit.General', [second[0]!, second[99]!])).toEqual(new Set());
      expect(await store.deliveredBlobs('Audit.General', ['blob-1', 'blob-2'])).toEqual(new Set(['blob-1']));
      // And it goes on from there.
      await store.commit({ contentType: 'Audit.General', at: '2026-11-25T10:02:00.000Z', checkpoint: '2026-11-25T09:02:00.000Z', recordKeys: [second[0]!], records: 1 });
      expect((await store.cursors()).get('Audit.General')).toMatchObject({ checkpoint: '2026-11-25T09:02:00.000Z', recordsDelivered: 101 });
    } finally {
      await store.close();
    }
  });
});
