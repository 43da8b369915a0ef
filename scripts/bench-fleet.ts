// Fleet figures (`npm run bench -- --scenario fleet`), each from processes as users run them: the stand-in
// (scripts/emulator.ts --tenants N --quiet-tenants) in one process, each worker `bin/o365-connector run --tenants
// <dir>` in its own.
//
//   quiet tenants  one worker collecting N tenants that have no content (what most of an MSSP's tenants are between
//                  bursts): the time until every unit completed a pass, then its RSS (peak and at the end) over one
//                  more poll interval of the default 60 s, with the state in PostgreSQL when one can be started here
//                  (else a state directory). Target: 500+ tenants within 300 MB.
//   takeover       two workers sharing the units of 20 tenants through PostgreSQL: one is SIGKILLed, and the time
//                  until the other holds every unit is measured (three times; the killed one restarts in between and
//                  gets its share back).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import { contentTypes } from '../contract/content-types.ts';
import { sessionNamePrefix } from '../connector/state/postgres/session.ts';
import { advisoryNamespace } from '../connector/state/postgres/schema.ts';
import { forCommandLine, postgresUnavailable, startTestPostgres, type TestPostgres } from '../test/receivers/postgres.ts';

const root = resolve(import.meta.dirname, '..');
const bin = join(root, 'bin/o365-connector');
const mb = (bytes: number) => Number((bytes / 1e6).toFixed(1));

export interface FleetBenchOptions {
  readonly tenants: number;
  /** How long to keep measuring after every unit completed a pass (a user's poll interval, 60 s by default). */
  readonly settleSeconds: number;
  readonly env: NodeJS.ProcessEnv;
  readonly progress: (line: string) => void;
}

interface StandIn { dir: string; stop(): Promise<void>; commandLine: string }

async function startStandIn(tenants: number): Promise<StandIn> {
  const dir = await mkdtemp(join(tmpdir(), 'o365-bench-fleet-'));
  const argv = [process.execPath, join(root, 'scripts/emulator.ts'), '--tenants', String(tenants), '--quiet-tenants', '--outputs-dir', join(dir, 'tenants'),
    '--days', '0.1', '--arrival-interval', '0', '--enable', 'all'];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  await new Promise<string>((done, reject) => {
    createInterface({ input: child.stdout! }).once('line', done);
    child.once('exit', (code) => reject(new Error(`the stand-in exited with ${code}`)));
  });
  return { dir, commandLine: argv.slice(1).join(' '), stop: async () => { child.kill('SIGTERM'); await exited; } };
}

interface Worker { child: ChildProcess; exited: Promise<number | null>; argv: string[] }

function startWorker(tenantsDir: string, state: string, name: string, extra: string[], env: NodeJS.ProcessEnv): Worker {
  const argv = ['run', '--tenants', tenantsDir, '--state', state, '--worker-name', name, '--since', '1h', '--sink', `file:${join(tenantsDir, '..', `${name}.ndjson`)}`, ...extra];
  const child = spawn(bin, argv, { env: { ...env, O365_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'ignore'] });
  return { child, argv, exited: new Promise((done) => child.once('exit', (code) => done(code))) };
}

async function rssOf(pid: number): Promise<{ rss: number; hwm: number } | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return undefined;
  }
}

/** Units whose cursor has a checkpoint (a pass completed), read as `status --json` reads them. */
async function unitsPassed(state: string, env: NodeJS.ProcessEnv): Promise<number> {
  const out = await new Promise<string>((done) => {
    const child = spawn(bin, ['status', '--json', '--offline', '--state', state], { env, stdio: ['ignore', 'pipe', 'ignore'] });
    let text = '';
    child.stdout!.on('data', (chunk: Buffer) => { text += chunk.toString(); });
    child.once('exit', () => done(text));
  });
  try {
    const report = JSON.parse(out) as { tenants?: Array<{ contentTypes: Array<{ checkpoint?: string }> }>; contentTypes?: Array<{ checkpoint?: string }> };
    const rows = report.tenants ? report.tenants.flatMap((t) => t.contentTypes) : (report.contentTypes ?? []);
    return rows.filter((row) => row.checkpoint).length;
  } catch {
    return 0;
  }
}

export async function quietTenants(options: FleetBenchOptions, postgres: TestPostgres | undefined) {
  const standIn = await startStandIn(options.tenants);
  const units = options.tenants * contentTypes.length;
  const commandLine = postgres ? forCommandLine(await postgres.newDatabase()) : { state: join(standIn.dir, 'state'), env: {} };
  const { state } = commandLine;
  const env = { ...options.env, ...commandLine.env };
  try {
    options.progress(`fleet: one worker, ${options.tenants} quiet tenants (${units} units), state in ${postgres ? 'PostgreSQL' : 'a state directory'}`);
    const started = performance.now();
    const worker = startWorker(join(standIn.dir, 'tenants'), state, 'bench', [], env);
    let peak = 0;
    const sample = async () => { const m = await rssOf(worker.child.pid!); if (m) peak = Math.max(peak, m.hwm); return m; };
    let passed = 0;
    const deadline = performance.now() + 15 * 60_000;
    while (passed < units) {
      if (worker.child.exitCode !== null) throw new Error(`the worker exited with ${worker.child.exitCode}: ${worker.argv.join(' ')}`);
      if (performance.now() > deadline) {
        worker.child.kill('SIGTERM');
        await worker.exited;
        throw new Error(`after 15 minutes only ${passed} of ${units} units had completed a pass`);
      }
      await delay(2_000);
      await sample();
      passed = await unitsPassed(state, env);
    }
    const allPassedSeconds = (performance.now() - started) / 1000;
    options.progress(`fleet: every unit completed a pass after ${allPassedSeconds.toFixed(1)} s; measuring ${options.settleSeconds} s more`);
    const rssAfterFirstPass = (await sample())?.rss ?? 0;
    const settleEnd = performance.now() + options.settleSeconds * 1000;
    while (performance.now() < settleEnd) {
      await delay(1_000);
      await sample();
    }
    const end = await sample();
    worker.child.kill('SIGTERM');
    const exitCode = await worker.exited;
    return {
      tenants: options.tenants, units, store: postgres ? 'postgresql' : 'state directory',
      command: `o365-connector ${worker.argv.join(' ').replace(state, postgres ? 'postgres://…' : state)}`, standIn: `node ${standIn.commandLine.replace(root + '/', '')}`,
      secondsUntilEveryUnitPassed: Number(allPassedSeconds.toFixed(1)),
      rssAfterFirstPassMB: mb(rssAfterFirstPass), rssAtEndMB: mb(end?.rss ?? 0), peakRssMB: mb(peak),
      exitCode,
    };
  } finally {
    await standIn.stop();
    await rm(standIn.dir, { recursive: true, force: true });
  }
}

/** Units each worker holds now, read from the server's own lock table (as status does). */
async function holdersByWorker(url: string): Promise<Map<string, number>> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ worker: string; units: number }>(`SELECT substr(a.application_name, $2) AS worker, count(*)::int AS units
      FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.classid = $1::oid AND l.objsubid = 2 AND l.granted AND a.application_name LIKE $3
      GROUP BY 1`, [advisoryNamespace, sessionNamePrefix.length + 1, `${sessionNamePrefix}%`]);
    return new Map(rows.map((row) => [row.worker, row.units]));
  } finally {
    await client.end();
  }
}

export async function takeover(options: FleetBenchOptions, postgres: TestPostgres) {
  const tenants = 20;
  const units = tenants * contentTypes.length;
  const standIn = await startStandIn(tenants);
  const url = await postgres.newDatabase();
  const tenantsDir = join(standIn.dir, 'tenants');
  const workers: Worker[] = [];
  const waitFor = async (condition: (held: Map<string, number>) => boolean, what: string) => {
    const deadline = performance.now() + 120_000;
    for (;;) {
      const held = await holdersByWorker(url);
      if (condition(held)) return;
      if (performance.now() > deadline) throw new Error(`fleet takeover: timed out waiting for ${what} (${JSON.stringify(Object.fromEntries(held))})`);
      await delay(20);
    }
  };
  try {
    options.progress(`fleet: takeover, two workers sharing ${units} units through PostgreSQL`);
    const commandLine = forCommandLine(url);
    const env = { ...options.env, ...commandLine.env };
    workers.push(startWorker(tenantsDir, commandLine.state, 'a', [], env));
    const kills: number[] = [];
    const rejoins: number[] = [];
    for (let round = 0; round < 3; round += 1) {
      const started = performance.now();
      const b = startWorker(tenantsDir, commandLine.state, 'b', [], env);
      workers.push(b);
      await waitFor((held) => (held.get('b') ?? 0) === units / 2 && (held.get('a') ?? 0) === units / 2, 'a fair share after a worker joined');
      rejoins.push(performance.now() - started);
      b.child.kill('SIGKILL');
      const killed = performance.now();
      await waitFor((held) => (held.get('a') ?? 0) === units && !held.has('b'), 'the survivor to hold every unit');
      kills.push(performance.now() - killed);
      await b.exited;
    }
    const seconds = (values: number[]) => values.map((ms) => Number((ms / 1000).toFixed(2)));
    return {
      tenants, units, claimIntervalSeconds: 2, commands: workers.slice(0, 2).map((w) => `o365-connector ${w.argv.join(' ').replace(commandLine.state, 'postgres://…')}`),
      takeoverSecondsAfterSigkill: seconds(kills), fairShareSecondsAfterJoin: seconds(rejoins),
    };
  } finally {
    for (const worker of workers) if (worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill('SIGTERM');
    await Promise.all(workers.map((w) => w.exited));
    await standIn.stop();
    await rm(standIn.dir, { recursive: true, force: true });
  }
}

export async function benchFleet(options: FleetBenchOptions) {
  const unavailable = postgresUnavailable();
  const postgres = unavailable ? undefined : await startTestPostgres();
  try {
    const quiet = await quietTenants(options, postgres);
    const takeoverResult = postgres ? await takeover(options, postgres) : { skipped: unavailable };
    return { quietTenants: quiet, takeover: takeoverResult };
  } finally {
    await postgres?.stop();
  }
}
