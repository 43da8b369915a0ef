import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { contentTypes } from '../../contract/content-types.ts';
import { startEmulator } from '../emulator/index.ts';
import { createTestPki } from '../emulator/tls.ts';
import { workDir, writeOutputs } from './support.ts';

const root = resolve(import.meta.dirname, '../..');
const recordsPerBlob = 100;
const days = 2;
/**
 * What the 10N run may use beyond the N run, in absolute terms: the baseline (Node, modules, TLS, the state
 * store, the bounded buffers) is the same in both runs, so a percentage of it says nothing; what a leak adds is
 * bytes per record. N is 100,000 because the connector takes some 100,000 records to reach its plateau (V8 sizes
 * its heap, the body pool and malloc reach their working set): a smaller N compares warm-up with steady state.
 * At the plateau the peak still moves from run to run with when collections happen: 26 to 45 MB between these two
 * runs when the test runs alone (it does: vitest.config.ts), up to 75 MB beside the rest of the suite. 100 MB
 * leaves room for that and still fails on any leak of record data (about 1 KB a record: 900 MB for the 900,000
 * extra records here) or of more than about 110 bytes a record.
 */
const marginBytes = 100 * 1024 * 1024;

interface Resources { peakRssBytes: number; cpuUserMicros: number; cpuSystemMicros: number }
interface Finished { summary: { records: number; blobs: number }; resources: Resources }

/**
 * A backlog of `records` records from a stand-in in this process, collected by the CLI in a child process as a
 * user runs it (no heap cap, no debug hooks; the stand-in's CA trusted through NODE_EXTRA_CA_CERTS). Returns the
 * connector's own 'run finished' line: getrusage of its process, untouched by the stand-in's memory.
 */
async function backfill(records: number, pki: Awaited<ReturnType<typeof createTestPki>>): Promise<Finished & { distinct: number }> {
  // A frozen clock: the corpus cannot grow under the run, so every run delivers exactly its backlog.
  const frozen = new Date(Math.floor(Date.now() / 60_000) * 60_000);
  const blobsPerType = records / recordsPerBlob / contentTypes.length;
  const emulator = await startEmulator({
    pki, now: () => frozen, seed: 17, days, blobIntervalMinutes: (days * 24 * 60) / blobsPerType, recordsPerBlob, pageSize: 200,
    duplicateRate: 0.02, lateBlobRate: 0, quotaPerMinute: 100_000_000, enabledContentTypes: [...contentTypes],
  });
  const dir = await workDir();
  try {
    const outputs = await writeOutputs(emulator, dir);
    const env: NodeJS.ProcessEnv = {};
    // Nothing from the test's environment reaches the connector that a user would not have set: no NODE_OPTIONS.
    for (const [key, value] of Object.entries(process.env)) if (key !== 'NODE_OPTIONS' && !key.startsWith('O365_')) env[key] = value;
    const child = spawn(join(root, 'bin/o365-connector'), ['run', '--once', '--outputs', outputs, '--state', join(dir, 'state'),
      '--sink', `file:${join(dir, 'audit.ndjson')}`, '--requests-per-minute', '1000000'], {
      cwd: dir, env: { ...env, NODE_EXTRA_CA_CERTS: emulator.caFile, O365_LOG_LEVEL: 'info' }, stdio: ['ignore', 'ignore', 'pipe'],
    });
    let finished: Finished | undefined;
    const stderr: string[] = [];
    const lines = createInterface({ input: child.stderr! });
    lines.on('line', (line) => {
      stderr.push(line);
      try {
        const entry = JSON.parse(line) as { msg?: string } & Partial<Finished>;
        if (entry.msg === 'run finished' && entry.summary && entry.resources) finished = { summary: entry.summary, resources: entry.resources };
      } catch { /* not a log line */ }
    });
    const [code] = await Promise.all([
      new Promise<number | null>((resolveExit) => child.once('exit', (exitCode) => resolveExit(exitCode))),
      new Promise<void>((resolveClose) => lines.once('close', () => resolveClose())),
    ]);
    expect(code, stderr.slice(-20).join('\n')).toBe(0);
    expect(finished, `no "run finished" line in:\n${stderr.slice(-20).join('\n')}`).toBeDefined();
    return { ...finished!, distinct: emulator.groundTruth().size };
  } finally {
    await emulator.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

describe('memory', () => {
  it('keeps the peak RSS of a backfill flat when the backlog grows tenfold (100,000 -> 1,000,000 records)', { timeout: 240_000 }, async () => {
    const pki = await createTestPki();
    const [small, large] = await (async () => {
      try { return [await backfill(100_000, pki), await backfill(1_000_000, pki)]; } finally { await rm(pki.dir, { recursive: true, force: true }); }
    })();
    // Both runs delivered their whole backlog: a run that stopped early would look frugal.
    expect(small.summary.records).toBe(small.distinct);
    expect(large.summary.records).toBe(large.distinct);
    const mb = (bytes: number) => `${(bytes / 1e6).toFixed(1)} MB`;
    expect(large.resources.peakRssBytes, `peak RSS ${mb(small.resources.peakRssBytes)} for ${small.summary.records} records, `
      + `${mb(large.resources.peakRssBytes)} for ${large.summary.records}; allowed ${mb(small.resources.peakRssBytes + marginBytes)}`)
      .toBeLessThanOrEqual(small.resources.peakRssBytes + marginBytes);
  });
});
