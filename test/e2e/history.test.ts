/**
 * History beyond the Management Activity API's 7 days, end to end: a corpus of 25 days, of which the API lists the
 * last 7 and the audit search holds all; `run --once --since 30d` must deliver every record once, byte for byte,
 * whichever source it came from, across SIGKILLs during the history, with windows split at the record limit,
 * throttling and failed queries; and say plainly what it cannot read.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { startEmulator } from '../emulator/index.ts';
import { contentTypes } from '../../contract/content-types.ts';
import { buildStatusReport } from '../../connector/report/status-report.ts';
import { compareFileBytes, exactBytes, fileLines, workDir, writeOutputs } from './support.ts';

const root = resolve(import.meta.dirname, '../..');
const day = 86_400_000;
// A frozen server clock: the corpus and the API's 7 days cannot move under the test.
const frozen = new Date(Math.floor(Date.now() / 60_000) * 60_000);
const emulator = await startEmulator({
  now: () => frozen, quotaPerMinute: 1_000_000, seed: 26, days: 25, blobIntervalMinutes: 120, recordsPerBlob: 10, pageSize: 50, duplicateRate: 0.2, lateBlobRate: 0.1,
  enabledContentTypes: [...contentTypes],
  // 120 records a day per content type: a day's query reaches the limit of 100 and is split. The clock is frozen, so
  // queries a killed run left unfinished never finish: the cap on them is raised.
  auditSearch: { pollsUntilDone: 1, pageSize: 40, recordCountLimit: 100, maxUnfinishedQueries: 1000 },
});
afterAll(() => emulator.stop());

/** What `--since 30d` must deliver: every record the API lists, and every older one the search holds (history reads a margin into the API's window). */
function expectedRecords(): Map<string, Buffer> {
  const truth = emulator.groundTruthBytes();
  for (const [id, bytes] of emulator.auditSearch.truth(undefined, { end: new Date(frozen.getTime() - 7 * day + 75 * 60_000) })) if (!truth.has(id)) truth.set(id, bytes);
  return truth;
}

interface Run { child: ChildProcess; done: Promise<number | null>; stderr: () => string }

function startRun(outputs: string, dir: string, args: readonly string[] = []): Run {
  const child = spawn(process.execPath, [join(root, 'connector/bin.mjs'), 'run', '--once', '--outputs', outputs, '--state', join(dir, 'state'), '--sink', `file:${join(dir, 'audit.ndjson')}`,
    '--requests-per-minute', '100000', '--since', '30d', '--history-poll', '100', ...args], {
    cwd: dir, env: { ...process.env, NODE_EXTRA_CA_CERTS: emulator.caFile, O365_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'pipe'], detached: true,
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  const done = new Promise<number | null>((resolvePromise) => child.on('exit', (code) => resolvePromise(code)));
  return { child, done, stderr: () => stderr };
}

/** `test`, as a user runs it: its exit code and what it printed. */
function testCommand(outputs: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [join(root, 'connector/bin.mjs'), 'test', '--outputs', outputs], { env: { ...process.env, NODE_EXTRA_CA_CERTS: emulator.caFile, O365_LOG_LEVEL: 'warn' } }, (error, stdout, stderr) => {
      done({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

async function until(condition: () => boolean, deadlineMs = 120_000): Promise<boolean> {
  const deadline = Date.now() + deadlineMs;
  while (Date.now() < deadline) {
    if (condition()) return true;
    await new Promise((r) => setTimeout(r, 5));
  }
  return false;
}

const searched = () => emulator.counters().auditSearch;

describe('history beyond the API\'s 7 days, from the audit search', () => {
  it('delivers a 25-day corpus once, byte for byte, from both sources (windows split at the record limit); a second run adds nothing', { timeout: 240_000 }, async () => {
    const dir = await workDir();
    const outputs = await writeOutputs(emulator, dir);
    const before = { ...searched() };
    const started = performance.now();
    const run = startRun(outputs, dir);
    expect(await run.done, run.stderr()).toBe(0);
    const seconds = (performance.now() - started) / 1000;
    const expected = expectedRecords();
    const listed = emulator.groundTruth();
    const older = [...emulator.auditSearch.truth(undefined, { end: new Date(frozen.getTime() - 7 * day) }).keys()].filter((id) => !listed.has(id));
    expect(older.length).toBeGreaterThan(5000); // records only the search holds
    expect(await compareFileBytes(join(dir, 'audit.ndjson'), expected)).toEqual(exactBytes);
    const after = searched();
    const queries = after.queriesCreated - before.queriesCreated;
    // Every day of history reached the limit (120 records > 100): each was asked again as two halves.
    expect(queries).toBeGreaterThanOrEqual(5 * 15 * 3);
    const report = await buildStatusReport({ stateDir: join(dir, 'state'), now: () => frozen });
    const fromSearch = report.contentTypes.reduce((n, row) => n + (row.history?.records ?? 0), 0);
    const requests = queries + (after.polls - before.polls) + (after.pages - before.pages);
    console.log(`history figures: ${expected.size} records delivered in ${seconds.toFixed(1)} s, ${fromSearch} of them read from the search (${Math.round(fromSearch / seconds * 60)} a minute); `
      + `${queries} queries, ${(requests / queries).toFixed(2)} requests a query (${after.polls - before.polls} polls, ${after.pages - before.pages} pages), ${after.records - before.records} search records served`);
    for (const row of report.contentTypes) {
      expect(row.history?.todo, row.contentType).toEqual([]);
      expect(row.history?.records, row.contentType).toBeGreaterThan(0);
    }
    expect(report.contentTypes.reduce((n, r) => n + r.recordsDelivered, 0)).toBe(expected.size);

    const lines = (await fileLines(join(dir, 'audit.ndjson'))).length;
    const again = startRun(outputs, dir);
    expect(await again.done, again.stderr()).toBe(0);
    expect((await fileLines(join(dir, 'audit.ndjson'))).length).toBe(lines);
  });

  it('holds every record exactly once after SIGKILLs at random points of the history and immediate restarts, with throttling and failed queries', { timeout: 300_000 }, async () => {
    const dir = await workDir();
    const outputs = await writeOutputs(emulator, dir);
    emulator.auditSearch.throttleNext(6, 1);
    emulator.auditSearch.failNext(3);
    const kills: number[] = [];
    for (let kill = 0; kill < 5; kill += 1) {
      const pagesBefore = searched().pages;
      const run = startRun(outputs, dir);
      // Somewhere in the history: after 5 to 60 more pages of the search were served.
      const point = 5 + Math.floor(Math.random() * 56);
      const reached = await Promise.race([until(() => searched().pages >= pagesBefore + point), run.done.then(() => false)]);
      if (reached && run.child.exitCode === null) {
        process.kill(-run.child.pid!, 'SIGKILL');
        kills.push(point);
      }
      await run.done;
    }
    expect(kills.length, `killed after ${kills.join(', ')} pages`).toBeGreaterThanOrEqual(3);
    const final = startRun(outputs, dir);
    expect(await final.done, final.stderr()).toBe(0);
    expect(await compareFileBytes(join(dir, 'audit.ndjson'), expectedRecords())).toEqual(exactBytes);
  });

  it('without AuditLogsQuery.Read.All says so once with the fix, delivers what the API lists, and reads the history once the permission is granted', { timeout: 240_000 }, async () => {
    const dir = await workDir();
    const outputs = await writeOutputs(emulator, dir);
    const roles = emulator.graphRoles();
    emulator.setGraphRoles(roles.filter((role) => role !== 'AuditLogsQuery.Read.All'));
    try {
      const check = await testCommand(outputs);
      expect(check.code, check.stderr).toBe(0);
      expect(check.stderr).toMatch(/^warning: GRAPH_FORBIDDEN: .*AuditLogsQuery\.Read\.All.*o365-connector:auditSearch true/m);
      const run = startRun(outputs, dir, ['--content-types', 'Audit.Exchange,DLP.All']);
      expect(await run.done, run.stderr()).toBe(0);
      const lines = run.stderr().split('\n').filter((line) => line.includes('AuditLogsQuery.Read.All'));
      expect(lines, run.stderr()).toHaveLength(1);
      expect(lines[0]).toMatch(/o365-connector:auditSearch true/);
      // Everything the API lists; only the records of blobs in the API's first 15 minutes (listed no more) are not.
      const listable = new Map([...emulator.groundTruthBytes('Audit.Exchange'), ...emulator.groundTruthBytes('DLP.All')]);
      const edge = (['Audit.Exchange', 'DLP.All'] as const).flatMap((type) => [...emulator.corpus.recordIds(emulator.corpus.blobsCreatedIn(type, new Date(frozen.getTime() - 7 * day), new Date(frozen.getTime() - 7 * day + 16 * 60_000)))]);
      const delivered = await compareFileBytes(join(dir, 'audit.ndjson'), listable);
      expect({ ...delivered, missing: 0 }).toEqual(exactBytes);
      expect(delivered.missing).toBeLessThanOrEqual(new Set(edge).size);
      const report = await buildStatusReport({ stateDir: join(dir, 'state'), now: () => frozen });
      expect(report.contentTypes.find((row) => row.contentType === 'Audit.Exchange')?.history?.todo.length).toBeGreaterThan(0);
    } finally {
      emulator.setGraphRoles(roles);
    }
    expect((await testCommand(outputs)).stdout).toMatch(/^History beyond 7 days: AuditLogsQuery\.Read\.All granted/m);
    const granted = startRun(outputs, dir, ['--content-types', 'Audit.Exchange,DLP.All']);
    expect(await granted.done, granted.stderr()).toBe(0);
    const expected = expectedRecords();
    const own = [emulator.auditSearch.truth('Audit.Exchange'), emulator.auditSearch.truth('DLP.All'), emulator.groundTruth('Audit.Exchange'), emulator.groundTruth('DLP.All')];
    const exchangeAndDlp = new Map([...expected].filter(([id]) => own.some((ids) => ids.has(id))));
    expect(await compareFileBytes(join(dir, 'audit.ndjson'), exchangeAndDlp)).toEqual(exactBytes);
  });

  it('says from when records are reachable when --since is further back than the search keeps, and reads from then on', { timeout: 240_000 }, async () => {
    const dir = await workDir();
    const outputs = await writeOutputs(emulator, dir);
    const run = startRun(outputs, dir, ['--content-types', 'Audit.AzureActiveDirectory', '--history-reach', '20']);
    expect(await run.done, run.stderr()).toBe(0);
    const reach = new Date(frozen.getTime() - 20 * day);
    expect(run.stderr()).toMatch(/beyond the audit search's 20 days/);
    const expected = new Map(emulator.groundTruthBytes('Audit.AzureActiveDirectory'));
    for (const [id, bytes] of emulator.auditSearch.truth('Audit.AzureActiveDirectory', { start: reach, end: new Date(frozen.getTime() - 7 * day + 75 * 60_000) })) expected.set(id, bytes);
    // The connector measures the reach from its own clock, a few minutes past the frozen one: the records of those
    // minutes at the edge may go either way (a few at most, at 120 records a day).
    const delivered = await compareFileBytes(join(dir, 'audit.ndjson'), expected);
    expect(delivered.duplicated + delivered.altered).toBe(0);
    expect(delivered.missing + delivered.extra).toBeLessThanOrEqual(3);
    const report = await buildStatusReport({ stateDir: join(dir, 'state'), now: () => frozen });
    expect(report.contentTypes[0]?.history?.unreachable.length).toBe(1);
  });

  it('reads each tenant\'s history in a fleet, in continuous run, every record once per tenant', { timeout: 240_000 }, async () => {
    const dir = await workDir();
    const second = emulator.addTenant({ days: 12 });
    await mkdir(join(dir, 'tenants'));
    for (const tenant of [emulator, second]) await tenant.writeStackOutputs(join(dir, 'tenants', `${tenant.tenantDomain}.json`));
    const types = 'Audit.AzureActiveDirectory,DLP.All';
    const expected = new Map<string, Buffer>();
    for (const tenant of [emulator, second]) {
      for (const type of ['Audit.AzureActiveDirectory', 'DLP.All'] as const) {
        for (const [id, bytes] of tenant.groundTruthBytes(type)) expected.set(id, bytes);
        for (const [id, bytes] of tenant.auditSearch.truth(type, { end: new Date(frozen.getTime() - 7 * day + 75 * 60_000) })) expected.set(id, bytes);
      }
    }
    const sink = join(dir, 'audit.ndjson');
    const child = spawn(process.execPath, [join(root, 'connector/bin.mjs'), 'run', '--tenants', join(dir, 'tenants'), '--state', join(dir, 'state'), '--sink', `file:${sink}`,
      '--requests-per-minute', '100000', '--since', '30d', '--history-poll', '100', '--content-types', types], {
      env: { ...process.env, NODE_EXTRA_CA_CERTS: emulator.caFile, O365_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'pipe'], detached: true,
    });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    const done = new Promise<number | null>((resolvePromise) => child.on('exit', (code) => resolvePromise(code)));
    try {
      const lines = async () => (await fileLines(sink).catch(() => [])).length;
      let count = 0;
      const deadline = Date.now() + 180_000;
      while (Date.now() < deadline && (count = await lines()) < expected.size) await new Promise((r) => setTimeout(r, 200));
      expect(count, stderr).toBe(expected.size);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await done, stderr).toBe(0);
    expect(await compareFileBytes(sink, expected)).toEqual(exactBytes);
  });
});
