import { afterAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { contentTypes } from '../../contract/content-types.ts';
import { openPostgresDatabase } from '../../connector/state/postgres/store.ts';
import { unitName } from '../../connector/core/commit.ts';
import { startEmulator, type EmulatorTenant } from '../emulator/index.ts';
import { bulkReceiver } from '../receivers/http-receivers.ts';
import { forCommandLine, postgresUnavailable, startTestPostgres, type TestPostgres } from '../receivers/postgres.ts';
import { compareFileBytes, compareRecordBytes, exactBytes, splitLines, workDir } from './support.ts';

const root = resolve(import.meta.dirname, '../..');
// A frozen server clock: the corpora cannot move under the tests (new content is added by hand).
const frozen = new Date(Math.floor(Date.now() / 60_000) * 60_000);
const emulator = await startEmulator({ now: () => frozen, quotaPerMinute: 1_000_000, seed: 14, days: 1, blobIntervalMinutes: 60, recordsPerBlob: 20, duplicateRate: 0.1, enabledContentTypes: [...contentTypes], faults: { latencyMs: 10 } });
afterAll(() => emulator.stop());

interface Worker { child: ChildProcess; done: Promise<number | null>; stderr: () => string }

/** A worker as a supervisor starts it: its own process group, its own log. */
function startWorker(args: string[], env: NodeJS.ProcessEnv = {}): Worker {
  const child = spawn(process.execPath, [join(root, 'connector/bin.mjs'), 'run', '--requests-per-minute', '100000', '--since', '2d', ...args], {
    env: { ...process.env, O365_LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'ignore', 'pipe'], detached: true,
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  const done = new Promise<number | null>((resolvePromise) => child.on('exit', (code) => resolvePromise(code)));
  return { child, done, stderr: () => stderr };
}

/** Every record of these tenants, by Id: their exact bytes. */
function truthOf(tenants: readonly EmulatorTenant[]): Map<string, Buffer> {
  const truth = new Map<string, Buffer>();
  for (const tenant of tenants) for (const [id, bytes] of tenant.groundTruthBytes()) truth.set(id, bytes);
  return truth;
}

async function linesOf(file: string): Promise<Buffer[]> {
  try {
    return splitLines(await readFile(file));
  } catch {
    return [];
  }
}

/** A failed wait names what the worker logged last (warnings and errors), so a failure in CI can be read. */
async function explained(worker: Worker, waiting: Promise<unknown>): Promise<void> {
  try {
    await waiting;
  } catch (error) {
    const notes = worker.stderr().split('\n').filter((line) => !line.includes('"level":30')).slice(-15).join('\n');
    throw new Error(`${(error as Error).message}\nworker log (warnings and errors, last 15):\n${notes}`, { cause: error });
  }
}

const idOf = (line: Buffer) => (JSON.parse(line.toString('utf8')) as { Id: string }).Id;

describe('fleet: many tenants in one worker (state directory)', () => {
  it('run --once --tenants delivers every record of every tenant exactly once, byte for byte, while one tenant fails; status lists each tenant', { timeout: 120_000 }, async () => {
    const dir = await workDir();
    const tenants = [emulator, emulator.addTenant(), emulator.addTenant({ days: 0.5 })];
    // A tenant whose administrator turned auditing off: its passes fail, the others are not held back.
    const failing = emulator.addTenant({ days: 0.5, auditingEnabled: false });
    await mkdir(join(dir, 'tenants'));
    for (const tenant of [...tenants, failing]) await tenant.writeStackOutputs(join(dir, 'tenants', `${tenant.tenantDomain}.json`));
    const sink = join(dir, 'audit.ndjson');
    const worker = startWorker(['--once', '--tenants', join(dir, 'tenants'), '--state', join(dir, 'state'), '--sink', `file:${sink}`]);
    // --once ends with exit 4 when a unit failed, naming the tenant and the code of each failure.
    expect(await worker.done, worker.stderr()).toBe(4);
    const errorLines = worker.stderr().split('\n').filter((line) => line.startsWith('error: '));
    expect(errorLines.length).toBeGreaterThan(0);
    for (const line of errorLines) expect(line).toMatch(new RegExp(`^error: ${failing.tenantId} [A-Za-z.]+: AUDIT_LOG_DISABLED: `));
    expect(await compareFileBytes(sink, truthOf(tenants))).toEqual(exactBytes);

    const status = await new Promise<string>((done) => {
      const child = spawn(process.execPath, [join(root, 'connector/bin.mjs'), 'status', '--json', '--state', join(dir, 'state')], { stdio: ['ignore', 'pipe', 'ignore'] });
      let out = '';
      child.stdout!.on('data', (chunk: Buffer) => { out += chunk.toString(); });
      child.on('exit', () => done(out));
    });
    const report = JSON.parse(status) as { overall: string; tenants: Array<{ tenant: string; overall: string; contentTypes: Array<{ recordsDelivered: number; lastError?: { code: string } }> }> };
    expect(report.overall).toBe('Degraded');
    expect(report.tenants.map((t) => t.tenant).sort()).toEqual([...tenants, failing].map((t) => t.tenantId).sort());
    for (const tenant of tenants) {
      const row = report.tenants.find((t) => t.tenant === tenant.tenantId)!;
      expect(row.overall).toBe('Active');
      expect(row.contentTypes.reduce((n, r) => n + r.recordsDelivered, 0)).toBe(tenant.groundTruth().size);
    }
    const failed = report.tenants.find((t) => t.tenant === failing.tenantId)!;
    expect(failed.overall).toBe('Inactive');
    expect(failed.contentTypes.every((r) => r.lastError?.code === 'AUDIT_LOG_DISABLED')).toBe(true);
    for (const tenant of [...tenants.slice(1), failing]) emulator.removeTenant(tenant.tenantId);
  });

  it('collects each tenant\'s Microsoft Graph service health beside its audit log, every version once, byte for byte', { timeout: 120_000 }, async () => {
    const dir = await workDir();
    const tenants = [emulator.addTenant({ days: 0.1 }), emulator.addTenant({ days: 0.1 })];
    await mkdir(join(dir, 'tenants'));
    for (const tenant of tenants) {
      tenant.serviceAnnouncements.addIssue({ service: 'Exchange Online', title: `Mail delays for ${tenant.tenantDomain}`, at: new Date(frozen.getTime() - 3_600_000) });
      await tenant.writeStackOutputs(join(dir, 'tenants', `${tenant.tenantDomain}.json`));
    }
    const sink = join(dir, 'audit.ndjson');
    const worker = startWorker(['--once', '--tenants', join(dir, 'tenants'), '--state', join(dir, 'state'), '--sink', `file:${sink}`, '--content-types', 'Audit.General,ServiceHealth']);
    try {
      expect(await worker.done, worker.stderr()).toBe(0);
      const lines = (await linesOf(sink)).map((line) => line.toString('utf8'));
      // Every version changed since --since 2d, once, as Graph sent it (an hour's margin either side of that edge).
      const hour = 3_600_000;
      for (const tenant of tenants) {
        const versions = [...tenant.serviceAnnouncements.versions.values()].map((version) => ({ text: version.bytes.toString('utf8'), at: Date.parse(JSON.parse(version.bytes.toString('utf8')).lastModifiedDateTime) }));
        const recent = versions.filter((version) => version.at >= frozen.getTime() - 47 * hour);
        expect(recent.length).toBeGreaterThan(2);
        for (const version of recent) expect(lines.filter((line) => line === version.text)).toHaveLength(1);
        for (const version of versions.filter((v) => v.at < frozen.getTime() - 49 * hour)) expect(lines).not.toContain(version.text);
      }
      // And the audit log of both, exactly once (announcements carry no RecordType).
      const general = new Map(tenants.flatMap((tenant) => [...tenant.groundTruthBytes('Audit.General')]));
      expect(compareRecordBytes((await linesOf(sink)).filter((line) => line.includes('"RecordType"')), general)).toEqual(exactBytes);
    } finally {
      for (const tenant of tenants) emulator.removeTenant(tenant.tenantId);
    }
  });

  it('picks up a tenant added, a secret rotated and a tenant removed while running, without a restart', { timeout: 120_000 }, async () => {
    const dir = await workDir();
    const [a, b, c] = [emulator.addTenant({ days: 0.25 }), emulator.addTenant({ days: 0.25 }), emulator.addTenant({ days: 0.25 })];
    const tenantsDir = join(dir, 'tenants');
    await mkdir(tenantsDir);
    await a.writeStackOutputs(join(tenantsDir, 'a.json'));
    await b.writeStackOutputs(join(tenantsDir, 'b.json'));
    const sink = join(dir, 'audit.ndjson');
    const worker = startWorker(['--tenants', tenantsDir, '--state', join(dir, 'state'), '--sink', `file:${sink}`, '--poll-interval', '1', '--tenants-scan-interval', '1', '--claim-interval', '1']);
    try {
      const delivered = async () => new Set((await linesOf(sink)).map(idOf));
      const hasAll = (ids: Iterable<string>) => async () => { const have = await delivered(); return [...ids].every((id) => have.has(id)); };
      await expect.poll(hasAll([...a.groundTruth(), ...b.groundTruth()]), { timeout: 60_000, interval: 200 }).toBe(true);

      // a's file goes first, so that no scan of the directory can see c without seeing a gone.
      await rm(join(tenantsDir, 'a.json'));
      // Rotation: the old secret stops working and every token is revoked; only the new file's secret works.
      const rotated = b.rotateSecret({ expireOld: true });
      b.revokeTokens();
      await writeFile(join(tenantsDir, 'b.json'), JSON.stringify({ ...b.stackOutputs(), clientSecret: rotated }), { mode: 0o600 });
      await c.writeStackOutputs(join(tenantsDir, 'c.json'));
      // Units claimed after the removal (c's at the latest) mean the removed tenant's have stopped: they are given up first.
      const afterRemoval = () => worker.stderr().slice(Math.max(0, worker.stderr().indexOf('tenant removed')));
      await expect.poll(() => worker.stderr().includes('tenant removed') && afterRemoval().includes('"msg":"units claimed"'), { timeout: 30_000 }).toBe(true);
      const aRequests = a.counters().apiRequests;
      // Created a few minutes back: a blob created at the frozen instant itself sits on the end of every window.
      const created = new Date(frozen.getTime() - 5 * 60_000);
      const fromB = [...b.corpus.recordIds([b.addContent('Audit.Exchange', { count: 5, contentCreated: created })])];
      const fromA = [...a.corpus.recordIds([a.addContent('Audit.Exchange', { count: 5, contentCreated: created })])];
      await explained(worker, expect.poll(hasAll([...c.groundTruth(), ...fromB]), { timeout: 60_000, interval: 200 }).toBe(true));
      // A removed tenant is asked nothing more, and nothing new of it is delivered.
      expect(a.counters().apiRequests).toBe(aRequests);
      const have = await delivered();
      expect(fromA.some((id) => have.has(id))).toBe(false);
      // The rotated secret is the one in use, whichever path (the directory scan, or the token refresh that re-reads
      // the file after AADSTS7000222) noticed the change first: with every token revoked again, the next token is
      // issued without a refusal (the expired secret is not tried any more) and the tenant's new content arrives.
      const before = b.counters();
      b.revokeTokens();
      const fromBAgain = [...b.corpus.recordIds([b.addContent('Audit.Exchange', { count: 5, contentCreated: created })])];
      await explained(worker, expect.poll(hasAll(fromBAgain), { timeout: 60_000, interval: 200 }).toBe(true));
      expect(b.counters().tokensIssued).toBeGreaterThan(before.tokensIssued);
      expect(b.counters().tokenFailures).toBe(before.tokenFailures);
    } finally {
      worker.child.kill('SIGTERM');
      expect(await worker.done, worker.stderr()).toBe(0);
      for (const tenant of [a, b, c]) emulator.removeTenant(tenant.tenantId);
    }
    expect(await compareFileBytes(sink, truthOf([b, c]))).toMatchObject({ duplicated: 0, altered: 0 });
  });
});

const noPostgres = postgresUnavailable();

describe.skipIf(noPostgres !== undefined)(`fleet: workers sharing a PostgreSQL store${noPostgres ? ` (skipped: ${noPostgres})` : ''}`, () => {
  let postgres: TestPostgres | undefined;
  afterAll(async () => { await postgres?.stop(); });

  it('a worker whose database session is cut stops its units at once, reconnects, claims them again and loses nothing', { timeout: 120_000 }, async () => {
    postgres ??= await startTestPostgres();
    const url = await postgres.newDatabase();
    const dir = await workDir();
    const slow = { latencyMs: 100 };
    const tenants = [emulator.addTenant({ faults: slow }), emulator.addTenant({ faults: slow })];
    const tenantsDir = join(dir, 'tenants');
    await mkdir(tenantsDir);
    for (const tenant of tenants) await tenant.writeStackOutputs(join(tenantsDir, `${tenant.tenantId}.json`));
    const truth = truthOf(tenants);
    const elastic = await bulkReceiver();
    const commandLine = forCommandLine(url);
    const worker = startWorker(['--tenants', tenantsDir, '--state', commandLine.state, '--worker-name', 'cut', '--claim-interval', '1', '--poll-interval', '2',
      '--sink', `elasticsearch://127.0.0.1:${new URL(elastic.url).port}/o365-audit?tls=0&insecure=1`], commandLine.env);
    try {
      await expect.poll(() => elastic.documents.size, { timeout: 60_000, interval: 50 }).toBeGreaterThan(truth.size / 5);
      // The server ends the worker's session (an administrator, a failover, a network cut seen by the server).
      await postgres.admin(url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'o365-connector:cut'");
      await expect.poll(() => worker.stderr().includes('the session with the state database ended'), { timeout: 15_000 }).toBe(true);
      await expect.poll(() => worker.stderr().includes('reconnected to the state database'), { timeout: 30_000 }).toBe(true);
      await expect.poll(() => elastic.documents.size, { timeout: 90_000, interval: 100 }).toBe(truth.size);
      expect(worker.child.exitCode).toBeNull();
      worker.child.kill('SIGTERM');
      expect(await worker.done, worker.stderr()).toBe(0);
      expect(compareRecordBytes(elastic.documents.values(), truth)).toEqual(exactBytes);
    } finally {
      if (worker.child.exitCode === null && worker.child.signalCode === null) process.kill(-worker.child.pid!, 'SIGKILL');
      await elastic.close();
      for (const tenant of tenants) emulator.removeTenant(tenant.tenantId);
    }
  });

  it('3 workers, 6 tenants: a worker SIGKILLed mid-backfill is taken over, a late one gets its share; every record arrives, none twice in Elasticsearch, in files at most the killed batches', { timeout: 240_000 }, async () => {
    postgres ??= await startTestPostgres();
    const url = await postgres.newDatabase();
    const dir = await workDir();
    // Slow answers, so that the backfill is still under way when a worker is killed.
    const slow = { latencyMs: 200 };
    const tenants = [emulator, ...Array.from({ length: 5 }, () => emulator.addTenant({ faults: slow }))];
    const before = emulator.faults();
    emulator.setFaults(slow);
    const tenantsDir = join(dir, 'tenants');
    await mkdir(tenantsDir);
    for (const tenant of tenants) await tenant.writeStackOutputs(join(tenantsDir, `${tenant.tenantId}.json`));
    const truth = truthOf(tenants);
    const elastic = await bulkReceiver();
    const fileOf = (name: string) => join(dir, `${name}.ndjson`);
    const commandLine = forCommandLine(url);
    const start = (name: string) => startWorker(['--tenants', tenantsDir, '--state', commandLine.state, '--worker-name', name, '--claim-interval', '1', '--poll-interval', '2',
      '--sink', `file:${fileOf(name)}`, '--sink', `elasticsearch://127.0.0.1:${new URL(elastic.url).port}/o365-audit?tls=0&insecure=1`], commandLine.env);
    const workers = new Map([['w1', start('w1')], ['w2', start('w2')], ['w3', start('w3')]]);
    /** Who holds what, as `status` reads it (a read-only open sees the schema once the workers made it). */
    const holders = async () => {
      const observer = await openPostgresDatabase(url, { workerName: 'test', readOnly: true });
      try {
        return new Map((await observer.claims.holders()).map((holder) => [unitName(holder.unit), holder.worker]));
      } finally {
        await observer.close();
      }
    };
    const units = tenants.length * contentTypes.length;
    try {
      // The backfill is under way in all three workers.
      await expect.poll(async () => new Set((await holders()).values()).size, { timeout: 60_000, interval: 100 }).toBe(3);
      await expect.poll(() => elastic.documents.size, { timeout: 60_000, interval: 50 }).toBeGreaterThan(truth.size / 4);

      const killed = workers.get('w2')!;
      expect(elastic.documents.size).toBeLessThan(truth.size / 2);
      process.kill(-killed.child.pid!, 'SIGKILL');
      await killed.done;
      // Its session ended with it: the others hold every unit again within seconds.
      await expect.poll(async () => { const held = await holders(); return held.size === units && ![...held.values()].includes('w2'); }, { timeout: 30_000, interval: 100 }).toBe(true);
      const [row] = await postgres.admin<{ position: string }>(url, "SELECT position FROM sink_positions WHERE worker = 'w2' AND name LIKE 'file:%'");
      const committedOffset = (JSON.parse(row!.position) as { offset: number }).offset;
      const inFlightAtKill = splitLines((await readFile(fileOf('w2'))).subarray(committedOffset)).length;

      // A late worker gets a fair share.
      await expect.poll(() => elastic.documents.size, { timeout: 60_000, interval: 50 }).toBeGreaterThan(truth.size / 2);
      workers.set('w4', start('w4'));
      await expect.poll(async () => [...(await holders()).values()].filter((worker) => worker === 'w4').length, { timeout: 30_000, interval: 100 }).toBe(units / 3);

      await expect.poll(() => elastic.documents.size, { timeout: 120_000, interval: 100 }).toBe(truth.size);
      for (const [name, worker] of workers) {
        if (name === 'w2') continue;
        worker.child.kill('SIGTERM');
        expect(await worker.done, worker.stderr()).toBe(0);
      }
      // Elasticsearch (idempotent on _id): every record once, byte for byte.
      expect(compareRecordBytes(elastic.documents.values(), truth)).toEqual(exactBytes);
      // Files (at least once): every record, none altered; repeats only of the batches the killed worker had not committed.
      const lines = (await Promise.all(['w1', 'w2', 'w3', 'w4'].map((name) => linesOf(fileOf(name))))).flat();
      const comparison = compareRecordBytes(lines, truth);
      expect(comparison).toMatchObject({ missing: 0, extra: 0, altered: 0 });
      expect(comparison.duplicated).toBeLessThanOrEqual(inFlightAtKill);
    } finally {
      for (const worker of workers.values()) if (worker.child.exitCode === null && worker.child.signalCode === null) process.kill(-worker.child.pid!, 'SIGKILL');
      await elastic.close();
      emulator.setFaults(before);
      for (const tenant of tenants.slice(1)) emulator.removeTenant(tenant.tenantId);
    }
  });
});
