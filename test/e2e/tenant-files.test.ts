/**
 * What a fleet worker meets in its tenants directory besides good outputs files: files its user cannot read,
 * symbolic links to nothing, to themselves or to a device, a directory or a FIFO named *.json, a second file of one
 * tenant, a file caught while it is being rewritten. Each is reported once, with the fix, and never stops, hangs or
 * bloats the worker or `test --tenants`.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { chmod, chown, copyFile, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { contentTypes } from '../../contract/content-types.ts';
import { startEmulator, type EmulatorTenant } from '../emulator/index.ts';
import { exitWithin, httpGet, startConnector, type ConnectorProcess } from './processes.ts';
import { splitLines, workDir } from './support.ts';

const root = resolve(import.meta.dirname, '../..');
const frozen = new Date(Math.floor(Date.now() / 60_000) * 60_000);
const emulator = await startEmulator({ now: () => frozen, quotaPerMinute: 1_000_000, seed: 24, days: 0.25, blobIntervalMinutes: 60, recordsPerBlob: 5, enabledContentTypes: [...contentTypes] });
afterAll(() => emulator.stop());

const logLines = (run: ConnectorProcess) => run.stderr().split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as { msg: string; file?: string; reason?: string; level: string; tenant?: string; address?: string; component?: string });

/** Returns once the worker has read the directory twice more at least: a file added is seen, then its removal. */
/** `run` with `args`, `body` given the worker; then SIGTERM, and the worker must exit 0. */
async function withWorker(args: string[], body: (worker: ConnectorProcess) => Promise<void>): Promise<void> {
  const worker = startConnector(['run', ...args]);
  try {
    await body(worker);
  } finally {
    worker.child.kill('SIGTERM');
    expect(await exitWithin(worker, 30_000), worker.stderr()).toBe(0);
  }
}

/** A work directory with an empty tenants directory and a new tenant of the stand-in, removed after `body`. */
async function withNewTenant(days: number, body: (context: { dir: string; tenants: string; tenant: EmulatorTenant }) => Promise<void>): Promise<void> {
  const dir = await workDir();
  const tenants = join(dir, 'tenants');
  await mkdir(tenants);
  const tenant = emulator.addTenant({ days });
  try {
    await body({ dir, tenants, tenant });
  } finally {
    emulator.removeTenant(tenant.tenantId);
  }
}

async function twoMoreScans(worker: ConnectorProcess, tenants: string): Promise<void> {
  const extra = emulator.addTenant({ days: 0.01 });
  try {
    await extra.writeStackOutputs(join(tenants, 'extra.json'));
    await expect.poll(() => logLines(worker).some((line) => line.msg === 'tenant added' && line.tenant === extra.tenantId), { timeout: 30_000 }).toBe(true);
    await rm(join(tenants, 'extra.json'));
    await expect.poll(() => logLines(worker).some((line) => line.msg.startsWith('tenant removed') && line.tenant === extra.tenantId), { timeout: 30_000 }).toBe(true);
  } finally {
    emulator.removeTenant(extra.tenantId);
  }
}

const nobody = 65534;
const setpriv = process.getuid?.() === 0 && spawnSync('setpriv', ['--version']).status === 0;

describe('tenant files a worker cannot use', () => {
  it.skipIf(!setpriv)('test --tenants as the connector\'s user (nobody) names a root-owned 0600 file, a dangling link, a link loop and a directory, and fails (exit 2)', { timeout: 60_000 }, async () => {
    // Everything nobody needs sits in a directory it may read: the checkout itself may not be (a 0700 temp dir).
    const dir = await workDir();
    await chmod(dir, 0o755);
    const entry = join(dir, 'o365-connector.mjs');
    await copyFile(join(root, 'dist/o365-connector.mjs'), entry);
    await chmod(entry, 0o644);
    const ca = join(dir, 'ca.pem');
    await copyFile(emulator.caFile, ca);
    await chmod(ca, 0o644);
    const tenants = join(dir, 'tenants');
    await mkdir(tenants, { mode: 0o755 });
    await chmod(tenants, 0o755);
    const good = join(tenants, 'good.json');
    await writeFile(good, JSON.stringify({ ...emulator.stackOutputs(), caFile: ca }), { mode: 0o600 });
    await chown(good, nobody, nobody);
    // What the README's steps give when an administrator ran `pulumi stack output … > tenants/x.json && chmod 600`.
    const other = emulator.addTenant({ days: 0.01 });
    try {
      await writeFile(join(tenants, 'admin.json'), JSON.stringify({ ...other.stackOutputs(), caFile: ca }), { mode: 0o600 });
      await symlink(join(dir, 'gone.json'), join(tenants, 'dangling.json'));
      await symlink(join(tenants, 'loop.json'), join(tenants, 'loop.json'));
      await mkdir(join(tenants, 'folder.json'));
      const asNobody = ['setpriv', `--reuid=${nobody}`, `--regid=${nobody}`, '--clear-groups'];
      let node = process.execPath;
      if (spawnSync(asNobody[0]!, [...asNobody.slice(1), node, '--version']).status !== 0) {
        node = join(dir, 'node');
        await copyFile(process.execPath, node);
        await chmod(node, 0o755);
      }
      const run = startConnector(['test', '--tenants', tenants], { prefix: asNobody, node, entry });
      expect(await exitWithin(run, 30_000), run.stderr()).toBe(2);
      expect(run.stdout()).toMatch(/^Tenant \S+ \S+: ok /m);
      expect(run.stdout()).toContain('1 of 1 tenant(s) ok; 4 file(s) unusable');
      const errors = run.stderr().split('\n').filter((line) => line.startsWith('error: '));
      expect(errors).toHaveLength(4);
      expect(errors.find((line) => line.includes('admin.json'))).toMatch(/cannot read \S*admin\.json: permission denied: it is owned by .* and the connector runs as .*\(uid 65534\), who may not read it\. Fix: .*chown 65534/);
      expect(errors.find((line) => line.includes('dangling.json'))).toMatch(/dangling\.json is a symbolic link to a file that does not exist/);
      expect(errors.find((line) => line.includes('loop.json'))).toMatch(/loop\.json is a symbolic link loop/);
      expect(errors.find((line) => line.includes('folder.json'))).toMatch(/folder\.json is a directory, not an outputs file/);
    } finally {
      emulator.removeTenant(other.tenantId);
    }
  });

  it('a FIFO, a link to /dev/zero, a dangling link, a link loop, a directory and a second file of one tenant: the worker collects the good tenant, reports each once (log, metric, status --tenants) and stops on SIGTERM; test --tenants ends at once', { timeout: 120_000 }, async () => {
    await withNewTenant(0.1, async ({ dir, tenants, tenant: good }) => {
      await good.writeStackOutputs(join(tenants, 'good.json'));
      await good.writeStackOutputs(join(tenants, 'second.json'));
      spawnSync('mkfifo', [join(tenants, 'fifo.json')]);
      await symlink('/dev/zero', join(tenants, 'zero.json'));
      await symlink(join(dir, 'gone.json'), join(tenants, 'dangling.json'));
      await symlink(join(tenants, 'loop.json'), join(tenants, 'loop.json'));
      await mkdir(join(tenants, 'folder.json'));
      const bad = ['second.json', 'fifo.json', 'zero.json', 'dangling.json', 'loop.json', 'folder.json'];

      const check = startConnector(['test', '--tenants', tenants]);
      expect(await exitWithin(check, 30_000), check.stderr()).toBe(2);
      expect(check.stdout()).toContain(`1 of 1 tenant(s) ok; ${bad.length} file(s) unusable`);
      expect(check.stderr()).toMatch(/fifo\.json is a FIFO \(named pipe\), not an outputs file/);
      expect(check.stderr()).toMatch(/zero\.json is a device, not an outputs file/);
      expect(check.stderr()).toMatch(/second\.json names tenant \S+, as \S+good\.json does/);

      const sink = join(dir, 'audit.ndjson');
      const state = join(dir, 'state');
      await withWorker(['--tenants', tenants, '--state', state, '--sink', `file:${sink}`, '--since', '1d', '--listen', '127.0.0.1:0',
        '--tenants-scan-interval', '1', '--claim-interval', '1', '--poll-interval', '1', '--content-types', 'Audit.General'], async (worker) => {
        const truth = good.groundTruth('Audit.General');
        const delivered = async () => { try { return splitLines(await readFile(sink)).length; } catch { return 0; } };
        await expect.poll(delivered, { timeout: 60_000, interval: 200 }).toBe(truth.size);
        await twoMoreScans(worker, tenants);
        for (const name of bad) {
          const reports = logLines(worker).filter((line) => line.file === join(tenants, name));
          expect(reports, name).toHaveLength(1);
          expect(reports[0]!.reason, name).toMatch(/^CONFIG_INVALID: --tenants: .* Fix: /);
        }
        const address = logLines(worker).find((line) => line.component === 'health' && line.address)!.address!;
        expect((await httpGet(address, '/metrics')).text).toMatch(new RegExp(`^o365_tenant_files_unusable ${bad.length}$`, 'm'));
        const status = startConnector(['status', '--state', state, '--tenants', tenants, '--offline']);
        expect(await exitWithin(status, 30_000), status.stderr()).toBe(10);
        for (const name of bad) expect(status.stdout()).toContain(`Tenant file ${join(tenants, name)}: unusable (not collected): CONFIG_INVALID`);
        expect(status.stdout()).toMatch(/^Overall: Degraded/);
      });
    });
  });

  it('a second file of one tenant is logged once, not on every scan', { timeout: 120_000 }, async () => {
    await withNewTenant(0.01, async ({ dir, tenants, tenant }) => {
      await tenant.writeStackOutputs(join(tenants, 'fabrikam.json'));
      await tenant.writeStackOutputs(join(tenants, 'fabrikam-copy.json'));
      await withWorker(['--tenants', tenants, '--state', join(dir, 'state'), '--sink', `file:${join(dir, 'audit.ndjson')}`, '--since', '1d',
        '--tenants-scan-interval', '1', '--claim-interval', '1', '--content-types', 'Audit.General'], async (worker) => {
        await twoMoreScans(worker, tenants);
        const duplicates = logLines(worker).filter((line) => /names tenant/.test(line.reason ?? ''));
        expect(duplicates).toHaveLength(1);
        expect(duplicates[0]!.file).toBe(join(tenants, 'fabrikam.json'));
      });
    });
  });

  it('a tenant file caught mid-rewrite (emptied, then written again) keeps the tenant running on its last good configuration, said once, naming the tenant file', { timeout: 120_000 }, async () => {
    await withNewTenant(0.1, async ({ dir, tenants, tenant }) => {
      const file = join(tenants, 'fabrikam.json');
      await tenant.writeStackOutputs(file);
      await withWorker(['--tenants', tenants, '--state', join(dir, 'state'), '--sink', `file:${join(dir, 'audit.ndjson')}`, '--since', '1d',
        '--tenants-scan-interval', '1', '--claim-interval', '1', '--poll-interval', '1', '--content-types', 'Audit.General,Audit.Exchange'], async (worker) => {
        await expect.poll(() => logLines(worker).some((line) => line.msg === 'units claimed'), { timeout: 30_000 }).toBe(true);
        // What `pulumi stack output … > tenants/fabrikam.json` leaves while Pulumi runs.
        await writeFile(file, '');
        await expect.poll(() => logLines(worker).filter((line) => line.file === file && line.level === 'warn'), { timeout: 30_000 }).toHaveLength(1);
        const warning = logLines(worker).find((line) => line.file === file && line.level === 'warn')!;
        expect(warning.msg).toMatch(/carries on with its last good configuration/);
        expect(warning.reason).toBe(`CONFIG_INVALID: --tenants: ${file} is empty, not the JSON object that \`pulumi stack output --json --show-secrets\` prints. Fix: regenerate it with that command`);
        expect(warning.reason).not.toContain('--outputs');
        await tenant.writeStackOutputs(file);
        await expect.poll(() => logLines(worker).some((line) => line.msg === 'a tenant file can be used again' && line.file === file), { timeout: 30_000 }).toBe(true);
        const messages = logLines(worker).map((line) => line.msg);
        expect(messages.filter((msg) => msg === 'tenant added')).toHaveLength(1);
        expect(messages.some((msg) => msg.startsWith('tenant removed') || msg.startsWith('tenant configuration changed') || msg === 'giving up a unit')).toBe(false);
        expect(logLines(worker).filter((line) => line.file === file && ['warn', 'error'].includes(line.level))).toHaveLength(1);
      });
    });
  });
});
