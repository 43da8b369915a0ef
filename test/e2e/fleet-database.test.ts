/**
 * Fleet workers and their PostgreSQL: restarted, stopped, late at boot, and shared by two workers of one name.
 * Real worker processes, a real throwaway PostgreSQL cluster (stopped and started by the tests), real files.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { contentTypes } from '../../contract/content-types.ts';
import { startEmulator, type EmulatorTenant } from '../emulator/index.ts';
import { ndjsonReceiver } from '../receivers/http-receivers.ts';
import { passwordOffCommandLine, postgresUnavailable, startTestPostgres, type TestPostgres } from '../receivers/postgres.ts';
import { exitWithin, httpGet, killConnector, startConnector, type ConnectorProcess } from './processes.ts';
import { compareRecordBytes, exactBytes, fileLines, workDir } from './support.ts';

const root = resolve(import.meta.dirname, '../..');
const frozen = new Date(Math.floor(Date.now() / 60_000) * 60_000);
const emulator = await startEmulator({ now: () => frozen, quotaPerMinute: 1_000_000, seed: 42, days: 0.01, blobIntervalMinutes: 60, recordsPerBlob: 5, enabledContentTypes: [...contentTypes] });
afterAll(() => emulator.stop());

/** A fleet worker, its log at info; the database's password in PGPASSWORD, never on the command line (refused there). */
function startWorker(args: string[]): ConnectorProcess {
  const line = passwordOffCommandLine(args);
  return startConnector(['run', '--requests-per-minute', '100000', '--since', '2d', ...line.args], { env: line.env });
}

function truthOf(tenants: readonly EmulatorTenant[]): Map<string, Buffer> {
  const truth = new Map<string, Buffer>();
  for (const tenant of tenants) for (const [id, bytes] of tenant.groundTruthBytes()) truth.set(id, bytes);
  return truth;
}

const idOf = (line: Buffer) => (JSON.parse(line.toString('utf8')) as { Id: string }).Id;

const noPostgres = postgresUnavailable();

describe.skipIf(noPostgres !== undefined)(`fleet workers and their PostgreSQL${noPostgres ? ` (skipped: ${noPostgres})` : ''}`, () => {
  let postgres: TestPostgres | undefined;
  afterAll(async () => { await postgres?.stop(); });

  /** A fresh database, a work directory, and a tenants directory holding one new tenant of the stand-in. */
  async function oneTenantFleet(days: number) {
    postgres ??= await startTestPostgres();
    const url = await postgres.newDatabase();
    const dir = await workDir();
    const tenant = emulator.addTenant({ days });
    const tenantsDir = join(dir, 'tenants');
    await mkdir(tenantsDir);
    await tenant.writeStackOutputs(join(tenantsDir, 'fabrikam.json'));
    return { url, dir, tenant, tenantsDir, server: postgres };
  }

  it('PostgreSQL restarted during a backfill: two workers with file sinks cut their files back before collecting again, and every record is in the files once', { timeout: 240_000 }, async (context) => {
    postgres ??= await startTestPostgres();
    if (!postgres.restart) return context.skip('O365_TEST_POSTGRES_URL: the tests cannot restart that server');
    const url = await postgres.newDatabase();
    const dir = await workDir();
    const slow = { latencyMs: 150 };
    const tenants = Array.from({ length: 4 }, () => emulator.addTenant({ days: 1, faults: slow }));
    const tenantsDir = join(dir, 'tenants');
    await mkdir(tenantsDir);
    for (const tenant of tenants) await tenant.writeStackOutputs(join(tenantsDir, `${tenant.tenantId}.json`));
    const truth = truthOf(tenants);
    const fileOf = (name: string) => join(dir, `${name}.ndjson`);
    const start = (name: string) => startWorker(['--tenants', tenantsDir, '--state', url, '--worker-name', name, '--claim-interval', '1', '--poll-interval', '2',
      '--batch-max-records', '20', '--sink', `file:${fileOf(name)}`]);
    const workers = [start('w1'), start('w2')];
    const delivered = async () => (await Promise.all(['w1', 'w2'].map((name) => fileLines(fileOf(name))))).flat();
    try {
      // Three restarts at different points of the backfill, each while both workers write.
      for (const [i, share] of [0.1, 0.3, 0.5].entries()) {
        await expect.poll(async () => (await delivered()).length, { timeout: 60_000, interval: 50 }).toBeGreaterThan(truth.size * share);
        expect((await delivered()).length).toBeLessThan(truth.size * 0.9);
        await postgres.restart();
        for (const worker of workers) await expect.poll(() => worker.stderr().split('reconnected to the state database').length - 1, { timeout: 60_000 }).toBe(i + 1);
      }
      await expect.poll(async () => new Set((await delivered()).map(idOf)).size, { timeout: 120_000, interval: 200 }).toBe(truth.size);
      for (const worker of workers) {
        worker.child.kill('SIGTERM');
        expect(await worker.done, worker.stderr()).toBe(0);
      }
      expect(compareRecordBytes(await delivered(), truth)).toEqual(exactBytes);
    } finally {
      workers.forEach(killConnector);
      for (const tenant of tenants) emulator.removeTenant(tenant.tenantId);
    }
  });

  it('a worker started while PostgreSQL is down waits for it, logging each attempt, and collects once it is up; a missing database stops a worker at once (exit 2)', { timeout: 120_000 }, async (context) => {
    postgres ??= await startTestPostgres();
    if (!postgres.stopServer || !postgres.startServer) return context.skip('O365_TEST_POSTGRES_URL: the tests cannot stop that server');
    const { url, dir, tenant, tenantsDir } = await oneTenantFleet(0.1);
    const sink = join(dir, 'audit.ndjson');
    await postgres.stopServer();
    let serverDown = true;
    const worker = startWorker(['--tenants', tenantsDir, '--state', url, '--worker-name', 'early', '--claim-interval', '1', '--poll-interval', '1', '--sink', `file:${sink}`]);
    try {
      const attempts = () => worker.stderr().split('\n').filter((line) => line.includes('the state database cannot be reached yet: trying again'));
      await expect.poll(() => attempts().length, { timeout: 30_000 }).toBeGreaterThanOrEqual(2);
      expect(worker.child.exitCode).toBeNull();
      expect(attempts()[0]).toContain('STATE_UNREACHABLE: cannot reach PostgreSQL at 127.0.0.1:');
      await postgres.startServer();
      serverDown = false;
      const truth = truthOf([tenant]);
      await expect.poll(async () => new Set((await fileLines(sink)).map(idOf)).size, { timeout: 60_000, interval: 200 }).toBe(truth.size);
      worker.child.kill('SIGTERM');
      expect(await worker.done, worker.stderr()).toBe(0);

      const missing = new URL(url);
      missing.pathname = '/no_such_database';
      const refused = startWorker(['--tenants', tenantsDir, '--state', missing.toString(), '--worker-name', 'early', '--sink', `file:${join(dir, 'other.ndjson')}`]);
      expect(await exitWithin(refused, 20_000), refused.stderr()).toBe(2);
      expect(refused.stderr().trim().split('\n').at(-1)).toMatch(/^error: STATE_NO_DATABASE: PostgreSQL at 127\.0\.0\.1:\d+ has no database no_such_database\. Fix: /);
    } finally {
      killConnector(worker);
      if (serverDown) await postgres.startServer();
      emulator.removeTenant(tenant.tenantId);
    }
  });

  it('a second worker with the name of a live one is refused in one line (exit 2), and the first carries on', { timeout: 120_000 }, async () => {
    const { url, dir, tenant, tenantsDir } = await oneTenantFleet(0.05);
    const first = startWorker(['--tenants', tenantsDir, '--state', url, '--worker-name', 'same', '--claim-interval', '1', '--sink', `file:${join(dir, 'a.ndjson')}`]);
    let second: ConnectorProcess | undefined;
    try {
      await expect.poll(() => first.stderr().includes('"msg":"units claimed"'), { timeout: 30_000 }).toBe(true);
      second = startWorker(['--tenants', tenantsDir, '--state', url, '--worker-name', 'same', '--claim-interval', '1', '--sink', `file:${join(dir, 'b.ndjson')}`]);
      expect(await exitWithin(second, 30_000), second.stderr()).toBe(2);
      const errors = second.stderr().split('\n').filter((line) => line.startsWith('error'));
      expect(errors).toHaveLength(1);
      expect(errors[0]).toMatch(/^error: STATE_WORKER_NAME_TAKEN: another live worker of postgresql:\/\/\S+ is named same \(connected from 127\.0\.0\.1 since \S+\); two workers of one name would share their sink positions\. Fix: give each worker its own --worker-name/);
      expect(first.child.exitCode).toBeNull();
      first.child.kill('SIGTERM');
      expect(await first.done, first.stderr()).toBe(0);
    } finally {
      killConnector(first);
      if (second) killConnector(second);
      emulator.removeTenant(tenant.tenantId);
    }
  });

  it('readiness, o365_collection_active and status follow whether collection progresses: a sink that does not acknowledge, PostgreSQL stopped, no worker running', { timeout: 180_000 }, async () => {
    const { url, dir, tenant, tenantsDir, server } = await oneTenantFleet(0.05);
    const receiver = await ndjsonReceiver();
    const worker = startWorker(['--tenants', tenantsDir, '--state', url, '--worker-name', 'watched', '--listen', '127.0.0.1:0', '--stalled-after', '2',
      '--poll-interval', '1', '--claim-interval', '1', '--content-types', 'Audit.General', '--sink', `${receiver.url}/ingest?maxAttempts=1`]);
    const status = () => runStatus(['--state', url, '--stalled-after', '2']);
    let serverDown = false;
    try {
      await expect.poll(() => /"address":"([^"]+)"/.exec(worker.stderr())?.[1], { timeout: 30_000 }).toBeDefined();
      const address = /"address":"([^"]+)"/.exec(worker.stderr())![1]!;
      const active = async () => /^o365_collection_active\{[^}]*\} (\d)$/m.exec((await httpGet(address, '/metrics')).text)?.[1];
      await expect.poll(async () => (await httpGet(address, '/readyz')).status, { timeout: 60_000 }).toBe(200);
      await expect.poll(active, { timeout: 60_000 }).toBe('1');
      expect((await status()).code).toBe(0);

      // The receiver refuses a few times in a row while new content waits: the batch is held, no commit is made.
      receiver.script(...Array.from({ length: 6 }, () => ({ status: 503 })));
      tenant.addContent('Audit.General', { count: 5, contentCreated: new Date(frozen.getTime() - 5 * 60_000) });
      await expect.poll(async () => (await httpGet(address, '/readyz')).text, { timeout: 30_000, interval: 100 }).toMatch(/^sink http:\/\/127\.0\.0\.1:\d+\/ingest\S* has acknowledged no batch for \d+ s: /m);
      await expect.poll(active, { timeout: 10_000, interval: 100 }).toBe('0');
      await expect.poll(async () => { const answer = await status(); return answer.code === 10 && /stalled: no commit for/.test(answer.stdout); }, { timeout: 15_000, interval: 200 }).toBe(true);
      // It acknowledges again: ready, active.
      await expect.poll(async () => (await httpGet(address, '/readyz')).status, { timeout: 60_000 }).toBe(200);
      await expect.poll(active, { timeout: 30_000 }).toBe('1');

      await server.stopServer!();
      serverDown = true;
      await expect.poll(async () => (await httpGet(address, '/readyz')).text, { timeout: 30_000, interval: 100 }).toMatch(/^state database unreachable for \d+ s: /m);
      await server.startServer!();
      serverDown = false;
      await expect.poll(async () => (await httpGet(address, '/readyz')).status, { timeout: 60_000 }).toBe(200);

      worker.child.kill('SIGTERM');
      expect(await worker.done, worker.stderr()).toBe(0);
      const stopped = await status();
      expect(stopped.code, stopped.stdout).toBe(11);
      expect(stopped.stdout).toMatch(/^Overall: Inactive/);
      expect(stopped.stdout).toContain('no worker is running');
    } finally {
      killConnector(worker);
      if (serverDown) await server.startServer!();
      await receiver.close();
      emulator.removeTenant(tenant.tenantId);
    }
  });
});

function runStatus(args: string[]): Promise<{ code: number | null; stdout: string }> {
  const line = passwordOffCommandLine(args);
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, [join(root, 'connector/bin.mjs'), 'status', ...line.args], { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, ...line.env } });
    let stdout = '';
    child.stdout!.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
    child.on('exit', (code) => resolvePromise({ code, stdout }));
  });
}
