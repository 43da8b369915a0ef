/**
 * What a newcomer hit (issue 23), each as a user meets it: the real binary in a child process, its exit code, the one
 * line it prints, and that nothing was written and nothing hung.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startEmulator } from '../../emulator/index.ts';
import { connectorOutputs } from '../../emulator/connector-config.ts';
import { workDir } from '../../e2e/support.ts';
import { postgresUnavailable, startTestPostgres, type TestPostgres } from '../../receivers/postgres.ts';
import { connectorRunnableByNobody } from '../../run-as-nobody.ts';

const root = resolve(import.meta.dirname, '../../..');
const emulator = await startEmulator({ seed: 23, days: 1 });
const dir = await workDir();
afterAll(() => emulator.stop());

interface Result { code: number | null; stdout: string; stderr: string; ms: number }

/** The connector as a user runs it, killed after `timeoutMs` (a hang shows as a null exit code). */
/** `as`: run as that user, from a copy of the bundle and Node it can reach (the checkout may be a 0700 clone). */
async function cli(args: string[], options: { env?: Record<string, string | undefined>; outputs?: Record<string, unknown>; timeoutMs?: number; as?: { uid: number; node: string; entry: string } | undefined } = {}): Promise<Result> {
  const file = join(dir, `outputs-${Math.random().toString(36).slice(2)}.json`);
  await writeFile(file, JSON.stringify({ ...connectorOutputs(emulator), caFile: undefined, ...options.outputs }), { mode: 0o600 });
  const env: Record<string, string | undefined> = { ...process.env, NODE_EXTRA_CA_CERTS: emulator.caFile, O365_OUTPUTS_FILE: file, O365_LOG_LEVEL: 'warn', ...options.env };
  for (const key of Object.keys(env)) if (env[key] === undefined) delete env[key];
  const started = performance.now();
  return new Promise<Result>((resolvePromise) => {
    const as = options.as;
    execFile(as?.node ?? process.execPath, [as?.entry ?? join(root, 'connector/bin.mjs'), ...args], { cwd: as === undefined ? dir : tmpdir(), env: env as NodeJS.ProcessEnv, timeout: options.timeoutMs ?? 60_000, killSignal: 'SIGKILL', ...(as === undefined ? {} : { uid: as.uid, gid: as.uid }) }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
      resolvePromise({ code, stdout, stderr, ms: performance.now() - started });
    });
  });
}

/** The lines that are errors: exactly one, and no stack trace. */
function oneErrorLine(result: Result): string {
  const lines = result.stderr.split('\n').filter((line) => /^(error|internal error):/.test(line));
  expect(lines, result.stderr).toHaveLength(1);
  expect(result.stderr).not.toMatch(/\n\s+at /);
  return lines[0]!;
}

describe('a misspelt sink parameter is refused, never obeyed (issue 23, 1)', () => {
  it.each([
    ['file:x.ndjson?fromat=ocsf', 'fromat'],
    ['file:x.ndjson?format=ocsf&fromat=x', 'fromat'],
    ['syslog+tcp://127.0.0.1:514?fromat=ocsf', 'fromat'],
  ])('test --sink %s: exit 2, one line naming the parameter and the known ones, no file written', async (spec, parameter) => {
    const cwd = join(dir, `sink-${parameter}-${Math.random().toString(36).slice(2)}`);
    await mkdir(cwd);
    const result = await cli(['test', '--sink', spec.replace('file:', `file:${cwd}/`)]);
    expect(result.code).toBe(2);
    expect(oneErrorLine(result)).toMatch(new RegExp(`^error: CONFIG_INVALID: --sink ${parameter}: unknown parameter for .* Fix: use any of .*format`));
    expect(await readdir(cwd)).toEqual([]);
  });

  it('run --sink with a misspelt parameter: exit 2 before anything is collected or written', async () => {
    const cwd = join(dir, 'run-misspelt');
    await mkdir(cwd);
    const result = await cli(['run', '--once', '--state', join(cwd, 'state'), '--sink', `file:${cwd}/x.ndjson?fromat=ocsf`]);
    expect(result.code).toBe(2);
    expect(oneErrorLine(result)).toMatch(/^error: CONFIG_INVALID: --sink fromat: unknown parameter for file: sinks\. Fix: use any of format/);
    expect(await readdir(cwd)).toEqual([]);
  });

  it('a bare path is told to write file:<path>', async () => {
    const result = await cli(['test', '--sink', '/var/log/o365/audit.ndjson']);
    expect(result.code).toBe(2);
    expect(oneErrorLine(result)).toBe('error: CONFIG_INVALID: --sink: "/var/log/o365/audit.ndjson" names no kind of sink. Fix: write file:/var/log/o365/audit.ndjson for a file, or stdout, syslog+tcp://…, https://…, splunk-hec://…, elasticsearch://…');
  });
});

describe('a --state the connector cannot create ends at once (issue 23, 2)', () => {
  it.each(['/proc/o365-state', '/proc/o365/deeper/state'])('run --state %s: exit 2 in one line within seconds, no spinning', async (state) => {
    const result = await cli(['run', '--once', '--content-types', 'Audit.General', '--state', state, '--sink', `file:${join(dir, 'proc.ndjson')}`], { timeoutMs: 20_000 });
    expect(result.code, `${result.stderr} after ${result.ms} ms`).toBe(2);
    expect(oneErrorLine(result)).toMatch(new RegExp(`^error: STATE_UNUSABLE: --state ${state} cannot be created: .*\\. Fix: give --state`));
    expect(result.ms).toBeLessThan(10_000);
  });

  it('a file sink under /proc: one line, no spinning', async () => {
    const result = await cli(['test', '--sink', 'file:/proc/o365/audit.ndjson'], { timeoutMs: 20_000 });
    expect(result.code, result.stderr).toBe(6);
    expect(oneErrorLine(result)).toMatch(/^error: sink file:\/proc\/o365\/audit\.ndjson: /);
  });
});

describe('status --state names what it got and what it expects (issue 23, 3)', () => {
  it('a file: exit 2, one line', async () => {
    const file = join(dir, 'notes.txt');
    await writeFile(file, 'x');
    const result = await cli(['status', '--offline', '--state', file]);
    expect(result.code).toBe(2);
    expect(oneErrorLine(result)).toBe(`error: STATE_NOT_A_DIRECTORY: --state ${file} is a file, and --state expects the state directory that \`run --state\` wrote, the one holding state.db. Fix: give --state that directory, or a postgres:// URL`);
  });

  it('the state.db file itself: exit 2, told to give its directory', async () => {
    const state = join(dir, 'status-db');
    expect((await cli(['run', '--once', '--content-types', 'Audit.General', '--since', '1h', '--state', state, '--sink', `file:${join(dir, 'status-db.ndjson')}`])).code).toBe(0);
    const result = await cli(['status', '--offline', '--state', join(state, 'state.db')]);
    expect(result.code).toBe(2);
    expect(oneErrorLine(result)).toBe(`error: STATE_NOT_A_DIRECTORY: --state ${join(state, 'state.db')} is the state database itself, and --state expects the directory holding it. Fix: use --state ${state}`);
  });

  it('a path that does not exist (a typo): exit 2, not Inactive', async () => {
    const typo = join(dir, 'stat-typo');
    const result = await cli(['status', '--offline', '--state', typo]);
    expect(result.code).toBe(2);
    expect(oneErrorLine(result)).toMatch(new RegExp(`^error: STATE_NOT_FOUND: --state ${typo} does not exist\\. Fix: give --state the state directory`));
    expect(existsSync(typo)).toBe(false);
  });
});

describe('a PostgreSQL password never on the command line (issue 23, 4)', () => {
  it.each([
    ['a password', 'postgres://o365:hunter2-secret@127.0.0.1:1/o365', 'hunter2-secret'],
    ['a password with a malformed escape', 'postgres://o365:%ZZhunter2@127.0.0.1:1/o365', 'hunter2'],
  ])('%s in the --state URL: exit 2, one line with the ways to give it, the password nowhere', async (_what, url, secret) => {
    for (const args of [['status', '--state', url], ['run', '--once', '--tenants', dir, '--state', url]]) {
      const result = await cli(args);
      expect(result.code, result.stderr).toBe(2);
      expect(oneErrorLine(result)).toBe('error: CONFIG_INVALID: --state: the PostgreSQL URL holds a password, which every user of this machine can read in the process list. Fix: remove it from the URL and give it as PGPASSWORD, in a PGPASSFILE or ~/.pgpass file (host:port:database:user:password, mode 0600), or in a file named by the URL\'s passwordFile=<path>');
      expect(result.stderr + result.stdout).not.toContain(secret);
    }
  });
});

const noPostgres = postgresUnavailable();
describe.skipIf(noPostgres !== undefined)(`connects to a real PostgreSQL with the password given the ways its tools take it (issue 23, 4)${noPostgres ? ` (skipped: ${noPostgres})` : ''}`, () => {
  let postgres: TestPostgres | undefined;
  afterAll(async () => { await postgres?.stop(); });

  it('passwordFile=, PGPASSFILE and PGPASSWORD each connect (scram-sha-256); a wrong one is STATE_DENIED, exit 2', { timeout: 120_000 }, async () => {
    postgres = await startTestPostgres();
    const url = new URL(await postgres.newDatabase());
    const password = decodeURIComponent(url.password);
    url.password = '';
    const passwordFile = join(dir, 'db.password');
    await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
    const pgpass = join(dir, 'pgpass');
    await writeFile(pgpass, `${url.hostname}:${url.port}:${url.pathname.slice(1)}:${decodeURIComponent(url.username)}:${password}\n`, { mode: 0o600 });
    const wrongFile = join(dir, 'wrong.password');
    await writeFile(wrongFile, 'not-the-password\n', { mode: 0o600 });
    const withFile = (file: string) => `${url.toString()}?passwordFile=${encodeURIComponent(file)}`;
    const noPassword = { PGPASSWORD: undefined, PGPASSFILE: join(dir, 'no-such-pgpass') };
    const connected = async (state: string, env: Record<string, string | undefined>) => {
      const result = await cli(['status', '--json', '--state', state], { env: { ...noPassword, ...env } });
      // A database no worker has used yet: connected, nothing collected.
      expect(result.code, result.stderr).toBe(11);
      expect(JSON.parse(result.stdout)).toMatchObject({ overall: 'Inactive', tenants: [] });
      expect(result.stderr + result.stdout).not.toContain(password);
    };
    await connected(withFile(passwordFile), {});
    await connected(url.toString(), { PGPASSFILE: pgpass });
    await connected(url.toString(), { PGPASSWORD: password });
    const denied = await cli(['status', '--json', '--state', withFile(wrongFile)], { env: noPassword });
    expect(denied.code).toBe(2);
    expect(oneErrorLine(denied)).toMatch(/^error: STATE_DENIED: PostgreSQL at .* refused user .*Fix: correct the user of the state database URL, or its password \(PGPASSWORD, a PGPASSFILE or ~\/\.pgpass, or the URL's passwordFile=<path>\)/);
    const unreadable = await cli(['status', '--json', '--state', withFile(join(dir, 'missing.password'))], { env: noPassword });
    expect(unreadable.code).toBe(2);
    expect(oneErrorLine(unreadable)).toMatch(/^error: CONFIG_INVALID: --state passwordFile=.*missing\.password does not exist\. Fix: /);
  });
});

describe('test fails when run would, and run collects what it can (issue 23, 5)', () => {
  it('without ActivityFeed.ReadDlp: test names DLP.All, the permission and the fix (exit 4); run --once delivers the other four, exits 4, and status shows the unit', { timeout: 120_000 }, async () => {
    emulator.setGrantedRoles(['ActivityFeed.Read', 'ServiceHealth.Read']);
    try {
      const tested = await cli(['test']);
      expect(tested.code, tested.stderr).toBe(4);
      expect(oneErrorLine(tested)).toMatch(/^error: AF10001: DLP\.All: the app's token lacks the ActivityFeed\.ReadDlp permission, which reading DLP\.All takes\. Fix: grant ActivityFeed\.ReadDlp with admin consent: .*pulumi config set o365-connector:permissions ActivityFeed\.Read,ActivityFeed\.ReadDlp.*or leave DLP\.All out of --content-types$/);
      expect(tested.stdout).toMatch(/^Content types the app may read: Audit\.AzureActiveDirectory, Audit\.Exchange, Audit\.SharePoint, Audit\.General$/m);

      const state = join(dir, 'no-readdlp');
      const sink = join(dir, 'no-readdlp.ndjson');
      const ran = await cli(['run', '--once', '--since', '1d', '--state', state, '--sink', `file:${sink}`]);
      expect(ran.code, ran.stderr).toBe(4);
      expect(oneErrorLine(ran)).toMatch(/^error: AF10001: DLP\.All: the app's token lacks the ActivityFeed\.ReadDlp permission/);
      const delivered = new Set((await readFile(sink, 'utf8')).split('\n').filter(Boolean).map((line) => (JSON.parse(line) as { Workload?: string; RecordType: number }).RecordType));
      expect(delivered.size).toBeGreaterThan(1);

      const status = await cli(['status', '--offline', '--json', '--state', state]);
      const report = JSON.parse(status.stdout) as { contentTypes: Array<{ contentType: string; recordsDelivered: number; lastError?: { code: string } }> };
      const byType = new Map(report.contentTypes.map((row) => [row.contentType, row]));
      expect(byType.get('DLP.All')?.lastError).toMatchObject({ code: 'AF10001' });
      for (const type of ['Audit.AzureActiveDirectory', 'Audit.Exchange', 'Audit.SharePoint', 'Audit.General']) {
        expect(byType.get(type)?.lastError, type).toBeUndefined();
      }
      expect(report.contentTypes.reduce((sum, row) => sum + row.recordsDelivered, 0)).toBeGreaterThan(0);
    } finally {
      emulator.setGrantedRoles(['ActivityFeed.Read', 'ActivityFeed.ReadDlp', 'ServiceHealth.Read']);
    }
  });
});

describe('an outputs file the connector may not read gets the right fix (issue 23, 6)', () => {
  it('EACCES names the owner, the mode and the user the connector runs as, and says how to let it read', async (context) => {
    // As root, the connector runs as nobody (root reads everything); otherwise the file is made unreadable to its owner.
    const asRoot = process.getuid?.() === 0;
    const runnable = asRoot ? await connectorRunnableByNobody(root) : undefined;
    context.onTestFinished(() => runnable?.remove());
    if (runnable && 'skip' in runnable) return context.skip(runnable.skip);
    const private_ = await mkdtemp(join(tmpdir(), 'o365-outputs-'));
    await chmod(private_, 0o755);
    const file = join(private_, 'outputs.json');
    await writeFile(file, JSON.stringify(connectorOutputs(emulator)), { mode: asRoot ? 0o600 : 0o000 });
    const result = await cli(['test', '--outputs', file], { as: runnable ? { uid: 65534, ...runnable } : undefined, env: { O365_OUTPUTS_FILE: undefined } });
    expect(result.code, result.stderr).toBe(2);
    const line = oneErrorLine(result);
    expect(line).toMatch(new RegExp(`^error: CONFIG_INVALID: --outputs: cannot read ${file}: permission denied: it is owned by .*\\(uid ${process.getuid!()}\\) with mode 0${asRoot ? '600' : '000'}, and the connector runs as .*\\(uid ${asRoot ? 65534 : process.getuid!()}\\), who may not read it\\. Fix: let that user read it and keep it private: chown ${asRoot ? 65534 : process.getuid!()} ${file} && chmod 600 ${file}`));
    expect(line).not.toContain('regenerate');
  });
});

describe('status for a fleet reads as a fleet (issue 23, 10)', () => {
  it('names tenants by domain, says a failing tenant\'s error once, and shows the worker of a SQLite fleet while it runs', { timeout: 120_000 }, async () => {
    const good = emulator.addTenant({ days: 0.2 });
    const failing = emulator.addTenant({ days: 0.2, auditingEnabled: false });
    const tenants = join(dir, 'fleet-status-tenants');
    await mkdir(tenants);
    for (const tenant of [good, failing]) await tenant.writeStackOutputs(join(tenants, `${tenant.tenantDomain}.json`));
    const state = join(dir, 'fleet-status-state');
    const worker = spawn(process.execPath, [join(root, 'connector/bin.mjs'), 'run', '--tenants', tenants, '--state', state, '--sink', `file:${join(dir, 'fleet-status.ndjson')}`, '--since', '2h', '--poll-interval', '1', '--claim-interval', '1'], {
      env: { ...process.env, O365_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'pipe'],
    });
    const status = (args: string[] = []) => cli(['status', '--offline', '--state', state, ...args], { env: { O365_OUTPUTS_FILE: undefined } });
    try {
      await expect.poll(async () => (await status()).stdout, { timeout: 60_000, interval: 500 }).toMatch(new RegExp(`${failing.tenantId} every content type: last error: AUDIT_LOG_DISABLED`));
      const byId = await status();
      expect(byId.stdout).toMatch(/^Workers: local \(10 units\)$/m);
      expect(byId.stdout).toContain('Tenants are shown by id: give `--tenants <dir>` (or O365_TENANTS_DIR) to show their domains.');
      const named = await status(['--tenants', tenants]);
      const rows = named.stdout.split('\n').filter((line) => /^\S+\s+(Audit|DLP)\./.test(line));
      expect(rows.length).toBeGreaterThan(0);
      for (const row of rows) expect([good.tenantDomain, failing.tenantDomain]).toContain(row.split(/\s+/)[0]);
      // The failing tenant's error: said for the tenant (its health, its last error), not once per content type.
      const remarks = named.stdout.split('\n').filter((line) => line.includes('AUDIT_LOG_DISABLED'));
      expect(remarks).toHaveLength(2);
      for (const remark of remarks) expect(remark.startsWith(`${failing.tenantDomain} (${failing.tenantId}) every content type: `)).toBe(true);
      expect(remarks[1]).toMatch(/ every content type: last error: AUDIT_LOG_DISABLED: .* \(latest at \d{4}-/);
      expect(named.stdout).not.toContain('none holds a unit');
    } finally {
      worker.kill('SIGTERM');
      await new Promise((done) => worker.once('exit', done));
      for (const tenant of [good, failing]) emulator.removeTenant(tenant.tenantId);
    }
    expect((await status()).stdout).toMatch(/^Workers: none holds a unit now/m);
  });
});

describe('a CA bundle, a certificate or a sink CA that is a FIFO is refused at once, never waited on', () => {
  it('test with the outputs\' caFile, --sink ca= or O365_CLIENT_CERTIFICATE_PATH naming a FIFO: exit 2, one line saying what is there', async () => {
    const fifo = join(dir, `fifo-${Math.random().toString(36).slice(2)}`);
    execFileSync('mkfifo', [fifo]);
    const ca = await cli(['test'], { outputs: { caFile: fifo }, timeoutMs: 20_000 });
    expect(ca.code, ca.stderr).toBe(2);
    expect(oneErrorLine(ca)).toBe(`error: CONFIG_INVALID: caFile: ${fifo} is a FIFO (named pipe), not a regular file. Fix: point caFile at a readable PEM file or remove it`);
    const sink = await cli(['test', '--sink', `syslog+tls://127.0.0.1:6514?ca=${fifo}`], { timeoutMs: 20_000 });
    expect(sink.code, sink.stderr).toBe(2);
    expect(oneErrorLine(sink)).toMatch(new RegExp(`^error: CONFIG_INVALID: --sink ca: ${fifo} is a FIFO \\(named pipe\\), not a regular file`));
    const certificate = await cli(['test'], { outputs: { clientSecret: undefined }, env: { O365_CLIENT_CERTIFICATE_PATH: fifo }, timeoutMs: 20_000 });
    expect(certificate.code, certificate.stderr).toBe(2);
    expect(oneErrorLine(certificate)).toMatch(new RegExp(`^error: CONFIG_INVALID: clientCertificatePath: ${fifo} is a FIFO \\(named pipe\\), not a regular file`));
  });
});
