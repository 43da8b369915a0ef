// `npm run bench -- [--scenario backfill|quota|throttle|sweep|history|sinks|fleet|all] [--records N] [--quota-records N] [--json]`
//
// Measures the path users run: `o365-connector run --once` as a child process (bin/o365-connector, which execs
// the pinned Node on connector/bin.mjs),
// configured by an outputs file, trusting the stand-in's CA through NODE_EXTRA_CA_CERTS, with no heap cap and no
// debug hooks. The stand-in runs in a process of its own (scripts/emulator.ts), so its CPU is not the connector's.
//
//   backfill  a backlog of --records with no quota in the way (stand-in --quota 100000000, connector
//             --requests-per-minute 1000000): wall time, records/s, MB/s, CPU and peak RSS of the connector,
//             beside the single-core limit measured in the same run (JSON.parse + JSON.stringify + write of the
//             sink file's bytes). Targets: throughput / limit >= 0.6, peak RSS <= 150 MB.
//   quota     a backlog of --quota-records against a 2,000/min quota, connector on its default settings: requests
//             made and AF429s (the stand-in's counters), against the quota-bound minimum. Target: wall / minimum <= 1.1.
//   throttle  the same against quotas far below the connector's ceiling (--throttle-quotas, default 100,500,2000 a
//             minute), each a backlog of about --throttle-minutes at that quota: exit code (0: throttling never
//             fails a run), time against the quota-bound minimum, share of requests answered AF429, the rate learned.
//   sweep     the cost of a sweep: a backlog of --sweep-blobs-per-day blobs a day per content type over 6 days,
//             backfilled, then a second run --once (a live pass and a sweep of the covered range): listing requests
//             it made (the stand-in's counters), and the same per blob for a tenant of 50,000 blobs a day.
//   sinks     throughput of each sink against local receivers (scripts/bench-sinks.ts).
//   fleet     how many quiet tenants one worker holds and in how much memory, and how fast a SIGKILLed worker's
//             units are taken over (scripts/bench-fleet.ts).
//
// Every figure comes with the command lines that produced it.
import { spawn, type ChildProcess } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, readdir, readFile, rm, stat } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { Command, Option } from 'commander';
import { count, share } from './arguments.ts';
import { Agent, request } from 'undici';
import { contentTypes } from '../contract/content-types.ts';

const root = resolve(import.meta.dirname, '..');
const bin = join(root, 'bin/o365-connector');


const options = new Command('bench')
  .description('Benchmarks of `o365-connector run --once` (a child process) against the stand-in (another process)')
  .addOption(new Option('--scenario <name>', 'which part to run').choices(['backfill', 'quota', 'throttle', 'sweep', 'history', 'sinks', 'fleet', 'all']).default('all'))
  .option('--records <n>', 'backfill: records in the backlog', count, 1_000_000)
  .option('--requests-per-minute <n>', 'backfill: the connector flag of the same name (a user with a bigger quota sets it)', count, 1_000_000)
  .option('--quota-records <n>', 'quota: records in the backlog', count, 200_000)
  .option('--quota <n>', 'quota: the stand-in quota per minute (the connector keeps its default settings)', count, 2000)
  .option('--throttle-quotas <list>', 'throttle: the stand-in quotas per minute, comma-separated', (text: string) => text.split(',').map((part) => count(part.trim())), [100, 500, 2000])
  .option('--throttle-minutes <n>', 'throttle: how long each backlog takes at its quota', count, 4)
  .option('--records-per-blob <n>', 'records per blob (both backfills)', count, 100)
  .option('--throttle-rate <0..1>', 'share of API requests the stand-in answers AF429 besides the quota (both backfills)', share, 0)
  .option('--sink-records <n>', 'sinks: records per sink', count, 50_000)
  .option('--fleet-tenants <n>', 'fleet: quiet tenants one worker collects', count, 500)
  .option('--fleet-settle <seconds>', 'fleet: how long to keep measuring after every unit completed a pass (one default poll interval)', count, 60)
  .option('--sweep-blobs-per-day <n>', 'sweep: blobs a day per content type', count, 2_000)
  .option('--history-records <n>', 'history: records in a 25-day corpus (the API lists the last 7 days, the audit search all)', count, 100_000)
  .option('--timeout <seconds>', 'a connector run taking longer is stopped and reported as failed', count, 3600)
  .option('--keep', 'keep the work directories (sink file, state, outputs) and report their paths')
  .option('--json', 'print the result as one line of JSON')
  .parse()
  .opts<{
    scenario: 'backfill' | 'quota' | 'throttle' | 'sweep' | 'history' | 'sinks' | 'fleet' | 'all'; throttleQuotas: number[]; throttleMinutes: number; fleetTenants: number; fleetSettle: number; records: number; requestsPerMinute: number; quotaRecords: number; quota: number; sweepBlobsPerDay: number; historyRecords: number;
    recordsPerBlob: number; throttleRate: number; sinkRecords: number; timeout: number; keep?: boolean; json?: boolean;
  }>();

const mb = (bytes: number) => Number((bytes / 1e6).toFixed(1));
const round = (value: number, digits = 2) => Number(value.toFixed(digits));
/** A command line as a user would type it, paths relative to the repository where that is shorter. */
const shell = (env: Record<string, string>, argv: string[]) =>
  [...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...argv.map((a) => (a.startsWith(root) ? relative(root, a) || '.' : a))]
    .map((part) => (/^[\w@%+=:,./-]+$/.test(part) ? part : `'${part.replaceAll("'", `'\\''`)}'`)).join(' ');
const progress = (line: string) => { if (!options.json) process.stderr.write(`bench: ${line}\n`); };

/** The environment of a child: this one without NODE_OPTIONS (no heap cap or hook leaks in) nor O365_* settings. */
function childEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (key !== 'NODE_OPTIONS' && !key.startsWith('O365_')) env[key] = value;
  return { ...env, ...extra };
}

// ---------------------------------------------------------------------------------------------------------------
// The stand-in, in its own process.

interface EmulatorCounters {
  apiRequests: number; throttled: number; serverErrors: number; blobsServed: number; recordsServed: number; bytesServed: number; byRoute: Record<string, number>;
  auditSearch: { queriesCreated: number; polls: number; pages: number; records: number; throttled: number };
}
interface StandIn { caFile: string; apiRoot: string; outputsFile: string; commandLine: string; counters(): Promise<EmulatorCounters>; stop(): Promise<void> }

async function startStandIn(dir: string, backlog: { records: number; quota: number; recordsPerBlob?: number; arrivalIntervalMs?: number; days?: number; extra?: string[] }): Promise<StandIn> {
  const days = backlog.days ?? 6;
  const recordsPerBlob = backlog.recordsPerBlob ?? options.recordsPerBlob;
  const blobsPerType = Math.max(1, Math.ceil(backlog.records / recordsPerBlob / contentTypes.length));
  const outputsFile = join(dir, 'outputs.json');
  const argv = [process.execPath, join(root, 'scripts/emulator.ts'), '--days', String(days), '--blob-interval', String((days * 24 * 60) / blobsPerType),
    '--records-per-blob', String(recordsPerBlob), '--late-rate', '0', '--duplicate-rate', '0.02', '--page-size', '200',
    // No arrivals during the run unless asked (the sweep's live phase): the backlog is what is measured.
    '--arrival-interval', String(backlog.arrivalIntervalMs ?? 0), '--arrival-late-rate', '0', '--quota', String(backlog.quota), '--throttle-rate', String(options.throttleRate), '--config-out', outputsFile, ...backlog.extra ?? []];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'], env: childEnv({}) });
  const exited = new Promise<void>((resolveExit) => child.once('exit', () => resolveExit()));
  const first = await new Promise<string>((resolveLine, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolveLine);
    child.once('exit', (code) => reject(new Error(`the stand-in exited with ${code} before it was ready: ${shell({}, argv)}`)));
  });
  const endpoint = JSON.parse(first) as { caFile: string; apiRoot: string };
  const agent = new Agent({ connect: { ca: await readFile(endpoint.caFile, 'utf8') } });
  return {
    caFile: endpoint.caFile, apiRoot: endpoint.apiRoot, outputsFile, commandLine: shell({}, argv),
    // Not a Microsoft endpoint: the stand-in's counters, readable from another process.
    counters: async () => (await (await request(`${endpoint.apiRoot}/_emulator/counters`, { dispatcher: agent })).body.json()) as EmulatorCounters,
    stop: async () => { child.kill('SIGTERM'); await exited; await agent.close(); },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// The connector, as a user runs it.

interface RunFinished { summary: { records: number; blobs: number; duplicates: number; expired: number; errors: number }; resources: { peakRssBytes: number; cpuUserMicros: number; cpuSystemMicros: number } }
interface ConnectorRun {
  exitCode: number | null; signal: string | null; wallSeconds: number; commandLine: string;
  /** Stopped (SIGTERM, a graceful stop) after --timeout: its figures are not those of a whole backlog. */
  timedOut: boolean;
  /** The connector's own 'run finished' log line (getrusage of its process). */
  finished: RunFinished | undefined;
  /** Cross-check from /proc/<pid>, polled every 100 ms (the last poll is up to 100 ms before exit). */
  polled: { vmHwmBytes: number; cpuMicros: number; samples: number } | undefined;
  stderrTail: string;
}

const clockTicksPerSecond = 100; // USER_HZ: 100 on every Linux architecture Node supports.

async function pollProc(pid: number): Promise<{ vmHwmBytes: number; cpuMicros: number } | undefined> {
  try {
    const [status, statLine] = await Promise.all([readFile(`/proc/${pid}/status`, 'utf8'), readFile(`/proc/${pid}/stat`, 'utf8')]);
    const hwm = /^VmHWM:\s+(\d+) kB/m.exec(status);
    // Fields after the ")" that closes comm: state is field 3, utime 14, stime 15.
    const fields = statLine.slice(statLine.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return hwm ? { vmHwmBytes: Number(hwm[1]) * 1024, cpuMicros: (ticks / clockTicksPerSecond) * 1e6 } : undefined;
  } catch {
    return undefined; // exited between polls, or no /proc
  }
}

async function runConnector(standIn: StandIn, dir: string, flags: string[]): Promise<ConnectorRun & { sinkFile: string }> {
  const sinkFile = join(dir, 'audit.ndjson');
  const env = { NODE_EXTRA_CA_CERTS: standIn.caFile, O365_LOG_LEVEL: 'info' };
  const argv = [bin, 'run', '--once', '--outputs', standIn.outputsFile, '--state', join(dir, 'state'), '--sink', `file:${sinkFile}`, ...flags];
  const started = performance.now();
  const child: ChildProcess = spawn(argv[0]!, argv.slice(1), { cwd: dir, env: childEnv(env), stdio: ['ignore', 'ignore', 'pipe'] });
  let finished: RunFinished | undefined;
  const tail: string[] = [];
  const lines = createInterface({ input: child.stderr! });
  const stderrClosed = new Promise<void>((resolveClose) => lines.once('close', () => resolveClose()));
  lines.on('line', (line) => {
    tail.push(line);
    if (tail.length > 20) tail.shift();
    if (!line.startsWith('{')) return;
    try {
      const entry = JSON.parse(line) as { msg?: string } & Partial<RunFinished>;
      if (entry.msg === 'run finished' && entry.summary && entry.resources) finished = { summary: entry.summary, resources: entry.resources };
    } catch { /* not a log line */ }
  });
  let polled: { vmHwmBytes: number; cpuMicros: number; samples: number } | undefined;
  const poll = setInterval(() => {
    void pollProc(child.pid!).then((sample) => {
      if (!sample) return;
      polled = { vmHwmBytes: Math.max(polled?.vmHwmBytes ?? 0, sample.vmHwmBytes), cpuMicros: Math.max(polled?.cpuMicros ?? 0, sample.cpuMicros), samples: (polled?.samples ?? 0) + 1 };
    });
  }, 100);
  let timedOut = false;
  const timeout = setTimeout(() => { timedOut = true; child.kill('SIGTERM'); }, options.timeout * 1000);
  const [exitCode, signal] = await new Promise<[number | null, string | null]>((resolveExit) => child.once('exit', (code, sig) => resolveExit([code, sig])));
  const wallSeconds = (performance.now() - started) / 1000;
  clearInterval(poll);
  clearTimeout(timeout);
  await stderrClosed; // the last lines, 'run finished' among them
  return { exitCode, signal, timedOut, wallSeconds, commandLine: shell(env, argv), finished, polled, stderrTail: tail.join('\n'), sinkFile };
}

function failure(run: ConnectorRun): string | undefined {
  if (run.timedOut) return `the connector was stopped after --timeout ${options.timeout} s:\n${run.stderrTail}`;
  if (run.exitCode === 0 && run.finished) return undefined;
  return `the connector ${run.exitCode === null ? `was killed by ${run.signal}` : `exited with ${run.exitCode}`}${run.finished ? '' : ' without its "run finished" line'}:\n${run.stderrTail}`;
}

/** Resource figures of a run, from its own log line and from /proc, side by side. */
function resources(run: ConnectorRun, records: number) {
  const own = run.finished!.resources;
  const cpuMicros = own.cpuUserMicros + own.cpuSystemMicros;
  return {
    peakRssMb: mb(own.peakRssBytes),
    cpuSeconds: round(cpuMicros / 1e6),
    cpuUserSeconds: round(own.cpuUserMicros / 1e6),
    cpuSystemSeconds: round(own.cpuSystemMicros / 1e6),
    cpuMicrosPerRecord: records > 0 ? round(cpuMicros / records, 1) : null,
    crossCheck: run.polled
      ? { source: '/proc/<pid>/status VmHWM and /proc/<pid>/stat utime+stime, polled every 100 ms', peakRssMb: mb(run.polled.vmHwmBytes), cpuSeconds: round(run.polled.cpuMicros / 1e6), samples: run.polled.samples }
      : { source: '/proc not readable: no cross-check' },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Scenarios.

/**
 * The lines of an NDJSON file, split on "\n" only: readline also splits on U+2028 and U+2029, which JSON allows
 * raw inside strings and which audit records contain.
 */
async function* ndjsonLines(file: string): AsyncGenerator<string> {
  let rest = '';
  for await (const chunk of createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 20 })) {
    const lines = (rest + (chunk as string)).split('\n');
    rest = lines.pop()!;
    yield* lines;
  }
  if (rest !== '') yield rest;
}

/**
 * Parse, serialize and write the same bytes, nothing else: what one core can do with this data. Lines that are
 * not JSON are counted (a sink file must hold none) and skipped.
 */
async function singleCoreLimit(sinkFile: string, dir: string) {
  const bytes = (await stat(sinkFile)).size;
  const started = performance.now();
  const out = await open(join(dir, 'limit.ndjson'), 'w');
  let batch = '';
  let records = 0;
  let invalidLines = 0;
  try {
    for await (const line of ndjsonLines(sinkFile)) {
      if (line === '') continue;
      let record: unknown;
      try { record = JSON.parse(line); } catch { invalidLines += 1; continue; }
      batch += JSON.stringify(record) + '\n';
      records += 1;
      if (batch.length > 1_000_000) { await out.write(batch); batch = ''; }
    }
    await out.write(batch);
    await out.sync();
  } finally {
    await out.close();
    await rm(join(dir, 'limit.ndjson'), { force: true });
  }
  const seconds = (performance.now() - started) / 1000;
  return {
    what: 'JSON.parse + JSON.stringify + write (fsync at the end) of the sink file, one core, this process',
    records, invalidLines, seconds: round(seconds), recordsPerSecond: Math.round(records / seconds), mbPerSecond: round(bytes / 1e6 / seconds),
  };
}

async function withWorkDir<T extends object>(name: string, body: (dir: string) => Promise<T>): Promise<Awaited<T> & { workDir?: string }> {
  const dir = await mkdtemp(join(tmpdir(), `o365-bench-${name}-`));
  try {
    const result = await body(dir);
    return options.keep ? { ...result, workDir: dir } : result;
  } finally {
    if (!options.keep) await rm(dir, { recursive: true, force: true });
  }
}

async function backfill() {
  return withWorkDir('backfill', async (dir) => {
    const quota = 100_000_000;
    progress(`backfill, no quota: ${options.records} records (stand-in --quota ${quota}, connector --requests-per-minute ${options.requestsPerMinute})`);
    const standIn = await startStandIn(dir, { records: options.records, quota });
    try {
      const before = await standIn.counters();
      const run = await runConnector(standIn, dir, ['--requests-per-minute', String(options.requestsPerMinute)]);
      const after = await standIn.counters();
      const failed = failure(run);
      if (failed) throw new Error(failed);
      const { summary } = run.finished!;
      const bytes = (await stat(run.sinkFile)).size;
      progress(`backfill: ${summary.records} records in ${run.wallSeconds.toFixed(1)} s; measuring the single-core limit`);
      const limit = await singleCoreLimit(run.sinkFile, dir);
      const recordsPerSecond = summary.records / run.wallSeconds;
      const ratio = recordsPerSecond / limit.recordsPerSecond;
      const used = resources(run, summary.records);
      return {
        scenario: 'backfill, no quota',
        commands: { standIn: standIn.commandLine, connector: run.commandLine },
        records: summary.records, blobs: summary.blobs, duplicatesDropped: summary.duplicates, expired: summary.expired, errors: summary.errors,
        wallSeconds: round(run.wallSeconds),
        recordsPerSecond: Math.round(recordsPerSecond),
        sinkMb: mb(bytes), sinkMbPerSecond: round(bytes / 1e6 / run.wallSeconds),
        // Lines of the sink file that are not JSON records: anything but 0 is a defect of the connector.
        sinkInvalidLines: limit.invalidLines,
        ...used,
        singleCoreLimit: limit,
        throughputToLimitRatio: round(ratio),
        standIn: { apiRequests: after.apiRequests - before.apiRequests, throttled429: after.throttled - before.throttled, recordsServed: after.recordsServed - before.recordsServed, mbServed: mb(after.bytesServed - before.bytesServed) },
        targets: { throughputToLimitRatio: { atLeast: 0.6, met: ratio >= 0.6 }, peakRssMb: { atMost: 150, met: used.peakRssMb <= 150 } },
      };
    } finally {
      await standIn.stop();
    }
  });
}

async function quota() {
  return againstQuota(options.quota, options.quotaRecords, options.recordsPerBlob);
}

/** Backlogs that take about --throttle-minutes each at quotas far below the connector's 2,000/min ceiling. */
async function throttle() {
  const recordsPerBlob = 20;
  const results = [];
  for (const perMinute of options.throttleQuotas) {
    const result = await againstQuota(perMinute, perMinute * options.throttleMinutes * recordsPerBlob, recordsPerBlob);
    progress(`${perMinute}/min: exit ${result.exitCode}, ${result.records} records in ${result.wallSeconds} s, ${result.wallToMinimumRatio} x the quota-bound minimum, ${result.throttled429} of ${result.requests} requests throttled (${(result.throttledShare * 100).toFixed(1)} %), learned ${result.learnedPerMinute}/min`);
    results.push(result);
  }
  return { scenario: 'throttle', results };
}

/** A backlog of `records` against a quota of `perMinute`, the connector on its default settings. */
async function againstQuota(perMinute: number, records: number, recordsPerBlob: number) {
  return withWorkDir('quota', async (dir) => {
    progress(`backfill against a ${perMinute}/min quota: ${records} records, ${recordsPerBlob} a blob, connector on default settings`);
    const standIn = await startStandIn(dir, { records, quota: perMinute, recordsPerBlob });
    try {
      const before = await standIn.counters();
      const run = await runConnector(standIn, dir, []);
      const after = await standIn.counters();
      const failed = failure(run);
      if (failed) throw new Error(failed);
      const { summary } = run.finished!;
      const requests = after.apiRequests - before.apiRequests;
      const throttled = after.throttled - before.throttled;
      // The minimum counts the requests that did work: counting AF429 answers too would lower the ratio of a
      // client for every request it wasted. Both are reported.
      const minimumSeconds = ((requests - throttled) / perMinute) * 60;
      const ratio = run.wallSeconds / minimumSeconds;
      const status = JSON.parse(await statusJson(join(dir, 'state'))) as { apiRate?: { perMinute: number; learnedPerMinute?: number } };
      return {
        scenario: `backfill against a ${perMinute}/min quota`,
        commands: { standIn: standIn.commandLine, connector: run.commandLine },
        exitCode: run.exitCode,
        records: summary.records, blobs: summary.blobs, duplicatesDropped: summary.duplicates, expired: summary.expired, errors: summary.errors,
        wallSeconds: round(run.wallSeconds),
        requests, throttled429: throttled, throttledShare: round(throttled / requests, 3), requestsPerMinute: Math.round((requests / run.wallSeconds) * 60),
        learnedPerMinute: status.apiRate?.learnedPerMinute, ratePerMinuteAtEnd: status.apiRate?.perMinute,
        requestsByRoute: Object.fromEntries(Object.keys(after.byRoute).map((route) => [route, (after.byRoute[route] ?? 0) - (before.byRoute[route] ?? 0)])),
        quotaBoundMinimumSeconds: round(minimumSeconds),
        quotaBoundMinimumSecondsCountingAf429: round((requests / perMinute) * 60),
        wallToMinimumRatio: round(ratio),
        ...resources(run, summary.records),
        targets: { wallToMinimumRatio: { atMost: 1.1, met: ratio <= 1.1 }, throttledShare: { atMost: 0.05, met: throttled / requests <= 0.05 } },
      };
    } finally {
      await standIn.stop();
    }
  });
}

/** `status --json` of a state directory, as a user would ask for it. */
async function statusJson(state: string): Promise<string> {
  const child = spawn(bin, ['status', '--state', state, '--json'], { env: childEnv({}), stdio: ['ignore', 'pipe', 'ignore'] });
  let text = '';
  child.stdout!.on('data', (chunk: Buffer) => { text += chunk; });
  await new Promise((resolveExit) => child.once('close', resolveExit));
  return text;
}

/**
 * History beyond 7 days: a first run `--since 30d` over a 25-day corpus; the API lists the last 7 days, the rest comes
 * from the audit search (queries the stand-in finishes at their first poll: at Microsoft a query takes seconds to
 * minutes, which this does not measure). Records a minute read from the search, and requests a query.
 */
async function history() {
  return withWorkDir('history', async (dir) => {
    const standIn = await startStandIn(dir, { records: options.historyRecords, quota: 1_000_000, days: 25, extra: ['--audit-search-polls', '1', '--audit-search-page-size', '1000'] });
    try {
      const before = (await standIn.counters()).auditSearch;
      progress(`history: run --once --since 30d over ${options.historyRecords} records in 25 days`);
      const run = await runConnector(standIn, dir, ['--since', '30d', '--history-poll', '200', '--requests-per-minute', '100000']);
      const problem = failure(run);
      if (problem) throw new Error(problem);
      const after = (await standIn.counters()).auditSearch;
      const status = JSON.parse(await statusJson(join(dir, 'state'))) as { contentTypes: Array<{ history?: { records: number } }> };
      const fromSearch = status.contentTypes.reduce((sum, row) => sum + (row.history?.records ?? 0), 0);
      const queries = after.queriesCreated - before.queriesCreated;
      const requests = queries + (after.polls - before.polls) + (after.pages - before.pages);
      return {
        scenario: 'history beyond 7 days (first run --since 30d over a 25-day corpus: the API lists 7 days, the audit search the rest)',
        command: run.commandLine, standIn: standIn.commandLine, wallSeconds: round(run.wallSeconds),
        recordsDelivered: run.finished!.summary.records,
        recordsFromSearch: fromSearch, searchRecordsPerMinute: Math.round(fromSearch / run.wallSeconds * 60),
        searchRecordsServed: after.records - before.records,
        queries, requestsPerQuery: queries > 0 ? round(requests / queries) : null, polls: after.polls - before.polls, pages: after.pages - before.pages,
        ...resources(run, run.finished!.summary.records),
      };
    } finally {
      await standIn.stop();
    }
  });
}

async function sweep() {
  return withWorkDir('sweep', async (dir) => {
    const days = 6;
    const blobs = options.sweepBlobsPerDay * days * contentTypes.length;
    progress(`sweep: ${options.sweepBlobsPerDay} blobs a day per content type over ${days} days (one record each), backfilled first, then a second run --once (a live pass and a sweep)`);
    // New blobs arrive all along (one a second per content type): the live phase measures whether they keep flowing.
    const standIn = await startStandIn(dir, { records: blobs, quota: 100_000_000, recordsPerBlob: 1, arrivalIntervalMs: 1000 });
    try {
      const flags = ['--requests-per-minute', '1000000'];
      const fill = await runConnector(standIn, dir, flags);
      const fillFailure = failure(fill);
      if (fillFailure) throw new Error(fillFailure);
      const before = await standIn.counters();
      const run = await runConnector(standIn, dir, flags);
      const after = await standIn.counters();
      const failed = failure(run);
      if (failed) throw new Error(failed);
      const route = (name: string) => (after.byRoute[name] ?? 0) - (before.byRoute[name] ?? 0);
      progress('sweep: a continuous run at the default 2,000/min ceiling, a sweep starting at once beside the live passes');
      const live = await liveDuringSweep(standIn, dir);
      const listRequests = route('subscriptions/content');
      const perTypePerDayBlob = listRequests / contentTypes.length / (options.sweepBlobsPerDay * days);
      return {
        scenario: 'sweep of the covered range (second run --once: a live pass, then a sweep over 6 days)',
        commands: { standIn: standIn.commandLine, connector: run.commandLine },
        blobsPerDayPerContentType: options.sweepBlobsPerDay, days, listingPageSize: 200,
        secondRun: { wallSeconds: round(run.wallSeconds), listRequests, blobFetches: route('audit'), records: run.finished!.summary.records },
        liveCollectionDuringASweep: live,
        listRequestsPerContentType: Math.round(listRequests / contentTypes.length),
        // Listing cost grows with the blobs listed (pages of 200): the same cost per blob for a tenant of 50,000 a day.
        extrapolatedTo50kBlobsADayPerContentType: { listRequestsPerContentType: Math.round(perTypePerDayBlob * 50_000 * 7), listRequestsForFiveTypes: Math.round(perTypePerDayBlob * 50_000 * 7 * 5), shareOfAnHourAt2000PerMinute: round((perTypePerDayBlob * 50_000 * 7 * 5) / (2000 * 60)) },
      };
    } finally {
      await standIn.stop();
    }
  });
}

/**
 * A continuous run (`run --poll-interval 2`, default request ceiling) while new blobs arrive, one a second per content
 * type: the records appended to the sink while its first sweep runs, against the arrivals in that time. Live
 * collection keeps pace when the two match (less what arrived within the last poll interval).
 */
async function liveDuringSweep(standIn: StandIn, dir: string) {
  const sinkFile = join(dir, 'audit.ndjson');
  const env = { NODE_EXTRA_CA_CERTS: standIn.caFile, O365_LOG_LEVEL: 'info' };
  const argv = [bin, 'run', '--poll-interval', '2', '--outputs', standIn.outputsFile, '--state', join(dir, 'state'), '--sink', `file:${sinkFile}`];
  const child = spawn(argv[0]!, argv.slice(1), { cwd: dir, env: childEnv(env), stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<void>((resolveExit) => child.once('exit', () => resolveExit()));
  const lineCount = async () => { let n = 0; for (const byte of await readFile(sinkFile)) if (byte === 0x0a) n += 1; return n; };
  const sweeps = new Map<string, { startedAt?: number; endedAt?: number; linesAtStart?: number; linesAtEnd?: number }>();
  const lines = createInterface({ input: child.stderr! });
  lines.on('line', (line) => {
    if (!line.startsWith('{')) return;
    const entry = JSON.parse(line) as { msg?: string; contentType?: string };
    if (entry.msg !== 'sweep started' && entry.msg !== 'sweep ended') return;
    const at = performance.now();
    const sweep = sweeps.get(entry.contentType!) ?? {};
    sweeps.set(entry.contentType!, sweep);
    if (entry.msg === 'sweep started' && sweep.startedAt === undefined) sweep.startedAt = at;
    if (entry.msg === 'sweep ended' && sweep.endedAt === undefined) sweep.endedAt = at;
  });
  const startLines = await lineCount();
  let firstStart: number | undefined;
  let linesAtFirstStart = startLines;
  const deadline = performance.now() + options.timeout * 1000;
  while (performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    const started = [...sweeps.values()].map((sweep) => sweep.startedAt).filter((at): at is number => at !== undefined);
    if (firstStart === undefined && started.length > 0) { firstStart = Math.min(...started); linesAtFirstStart = await lineCount(); }
    if (sweeps.size === contentTypes.length && [...sweeps.values()].every((sweep) => sweep.endedAt !== undefined)) break;
  }
  const lastEnd = Math.max(...[...sweeps.values()].map((sweep) => sweep.endedAt ?? Number.NaN));
  const linesAtLastEnd = await lineCount();
  child.kill('SIGTERM');
  await exited;
  const seconds = (lastEnd - (firstStart ?? lastEnd)) / 1000;
  const delivered = linesAtLastEnd - linesAtFirstStart;
  const arrived = seconds * contentTypes.length; // one record a second per content type
  return {
    command: shell(env, argv), sweepSeconds: round(seconds), recordsArrivedDuringSweeps: Math.round(arrived), recordsDeliveredDuringSweeps: delivered,
    deliveredToArrivedRatio: arrived > 0 ? round(delivered / arrived) : null,
    note: 'records the live passes delivered while the first sweeps ran, against those that arrived meanwhile (a record arriving within the last 2 s poll interval is delivered just after)',
  };
}

async function sinks() {
  if (options.sinkRecords === 0) return { scenario: 'sink throughput', skipped: '--sink-records 0' };
  progress(`sinks: ${options.sinkRecords} records per sink`);
  // Loaded here so that the backfill scenarios do not depend on the sinks' modules.
  return { scenario: 'sink throughput', command: `npx node scripts/bench-sinks.ts --records ${options.sinkRecords}`, results: await (await import('./bench-sinks.ts')).benchSinks({ records: options.sinkRecords }) };
}

/**
 * Which code `connector/bin.mjs` runs, by its rule: the bundle when it is newer than every connector source (as
 * after `npm ci`), the TypeScript sources otherwise (a working tree being edited, a forgotten `npm run build`).
 */
async function connectorCode(): Promise<string> {
  const newest = async (dir: string): Promise<number> => {
    let time = 0;
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) time = Math.max(time, await newest(path));
      else if (entry.name.endsWith('.ts')) time = Math.max(time, (await stat(path)).mtimeMs);
    }
    return time;
  };
  const bundle = await stat(join(root, 'dist/o365-connector.mjs')).catch(() => undefined);
  if (bundle && bundle.mtimeMs >= (await newest(join(root, 'connector')))) return 'bundle dist/o365-connector.mjs, as npm ci installs it';
  progress('dist/o365-connector.mjs is missing or older than the sources: measuring the TypeScript sources; `npm run build` first to measure what users run');
  return 'TypeScript sources (dist/o365-connector.mjs missing or stale: npm run build)';
}

// ---------------------------------------------------------------------------------------------------------------

const chosen = options.scenario;
const result: Record<string, unknown> = {
  command: shell({}, ['npm', 'run', 'bench', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])]),
  note: 'relative paths in commands are relative to the repository root; the connector ran in its work directory',
  connectorCode: chosen === 'sinks' ? undefined : await connectorCode(),
  node: process.version, cpus: `${cpus().length} x ${cpus()[0]?.model ?? 'unknown'}`, at: new Date().toISOString(),
};
const failures: string[] = [];
async function fleet() {
  const { benchFleet } = await import('./bench-fleet.ts');
  return { scenario: 'fleet', results: await benchFleet({ tenants: options.fleetTenants, settleSeconds: options.fleetSettle, env: childEnv({}), progress }) };
}

for (const [name, scenario] of [['backfill', backfill], ['quota', quota], ['throttle', throttle], ['sweep', sweep], ['history', history], ['sinks', sinks], ['fleet', fleet]] as const) {
  if (chosen !== 'all' && chosen !== name) continue;
  try {
    // Other work on the machine skews every figure (2 cores here): the load around each scenario says how much.
    const loadBefore = loadavg()[0]!;
    result[name] = { ...(await scenario()), loadAverage1m: { before: round(loadBefore), after: round(loadavg()[0]!) } };
  } catch (error) {
    failures.push(name);
    result[name] = { failed: (error as Error).message };
    progress(`${name} failed: ${(error as Error).message.split('\n')[0]} (details in the JSON)`);
  }
}
process.stdout.write(options.json ? JSON.stringify(result) + '\n' : JSON.stringify(result, null, 2) + '\n');
if (failures.length > 0) process.exitCode = 1;
