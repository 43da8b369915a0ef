import { afterAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { contentTypes } from '../../contract/content-types.ts';
import { startEmulator } from '../emulator/index.ts';
import { compareFileBytes, exactBytes, workDir, writeOutputs } from '../e2e/support.ts';

const root = resolve(import.meta.dirname, '../..');
const launcher = join(root, 'bin/o365-connector');
const pinnedNode = join(root, 'node_modules/node/bin/node');
// A frozen clock: the backlog cannot grow under the test, so "everything once" has one meaning.
const frozen = new Date(Math.floor(Date.now() / 60_000) * 60_000);
// Slow enough (latency on every answer) that a SIGTERM lands in the middle of the backlog, not after it.
const emulator = await startEmulator({
  now: () => frozen, quotaPerMinute: 1_000_000, seed: 23, days: 1, blobIntervalMinutes: 20, recordsPerBlob: 20, pageSize: 25,
  duplicateRate: 0.1, lateBlobRate: 0, enabledContentTypes: [...contentTypes], faults: { latencyMs: 40 },
});
afterAll(() => emulator.stop());

interface Started { child: ChildProcess; exit: Promise<number | null>; stderr: () => string }

function start(argv: string[], env: NodeJS.ProcessEnv): Started {
  const child = spawn(argv[0]!, argv.slice(1), { env: { ...process.env, NODE_EXTRA_CA_CERTS: emulator.caFile, O365_LOG_LEVEL: 'info', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  return { child, exit: new Promise((resolveExit) => child.once('exit', (code) => resolveExit(code))), stderr: () => stderr };
}

async function until(condition: () => Promise<boolean> | boolean, deadlineMs = 60_000): Promise<boolean> {
  const deadline = Date.now() + deadlineMs;
  while (Date.now() < deadline) {
    if (await condition()) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

const hasRecords = (file: string) => async () => { try { return (await stat(file)).size > 0; } catch { return false; } };

/** After a stop: an immediate restart on the same state is not refused (no lock wait) and ends with every record once. */
async function expectCleanHandOver(dir: string, outputs: string, sink: string): Promise<void> {
  const next = start([launcher, 'run', '--once', '--outputs', outputs, '--state', join(dir, 'state'), '--sink', `file:${sink}`, '--state-lock-wait', '0'], {});
  expect(await next.exit, next.stderr()).toBe(0);
  expect(await compareFileBytes(sink, emulator.groundTruthBytes())).toEqual(exactBytes);
}

/** The pids of a process's children, from /proc. */
function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

describe('bin/o365-connector', () => {
  it('is the connector process itself (it execs the pinned Node): a supervisor\'s SIGTERM to it stops the connector gracefully', { timeout: 120_000 }, async () => {
    const dir = await workDir();
    const outputs = await writeOutputs(emulator, dir);
    const sink = join(dir, 'audit.ndjson');
    const run = start([launcher, 'run', '--outputs', outputs, '--state', join(dir, 'state'), '--sink', `file:${sink}`], {});
    expect(await until(hasRecords(sink)), run.stderr()).toBe(true);
    // The pid the supervisor knows runs Node itself: no shell or npm in between to swallow the signal.
    expect(readlinkSync(`/proc/${run.child.pid}/exe`)).toBe(realpathSync(pinnedNode));
    expect(readFileSync(`/proc/${run.child.pid}/environ`, 'utf8').split('\0')).toContain('MALLOC_ARENA_MAX=2');
    run.child.kill('SIGTERM');
    expect(await run.exit, run.stderr()).toBe(0);
    expect(run.stderr()).toMatch(/"signal":"SIGTERM".*stopping/);
    expect(run.stderr()).toMatch(/"msg":"run finished"/);
    await expectCleanHandOver(dir, outputs, sink);
  });

  it('says what to do when node_modules is missing, instead of running another Node', () => {
    const copy = spawnSync('sh', ['-c', `d=$(mktemp -d) && mkdir "$d/bin" && cp "${launcher}" "$d/bin/" && "$d/bin/o365-connector" --help; echo "exit=$?"`], { encoding: 'utf8' });
    expect(copy.stderr).toMatch(/node_modules\/node\/bin\/node is missing: run 'npm ci' in \//);
    expect(copy.stdout).toMatch(/exit=1/);
  });
});

/** The Dockerfile's ENTRYPOINT and CMD (JSON form) and ENV, with the image's paths mapped to this checkout and `dir`. */
function dockerfileCommand(dir: string): { argv: string[]; env: Record<string, string> } {
  const text = readFileSync(join(root, 'Dockerfile'), 'utf8');
  const json = (instruction: string) => JSON.parse(new RegExp(`^${instruction}\\s+(\\[.*\\])\\s*$`, 'm').exec(text)![1]!) as string[];
  const workdir = /^WORKDIR\s+(\S+)/m.exec(text)![1]!;
  const map = (value: string) => value.replaceAll(workdir, root).replaceAll('/var/lib/o365', join(dir, 'state')).replaceAll('/var/log/o365', dir).replaceAll('/etc/o365-connector', dir);
  const env: Record<string, string> = {};
  for (const [, key, value] of text.matchAll(/^ENV\s+(\w+)=(\S+)/gm)) env[key!] = map(value!);
  return { argv: [...json('ENTRYPOINT'), ...json('CMD')].map(map), env };
}

const unshareWorks = spawnSync('unshare', ['--pid', '--fork', '--mount-proc', 'true']).status === 0;
const tini = '/usr/bin/tini';
const skipContainer = !existsSync(tini) ? 'tini is not installed (scripts/setup-test-deps.sh installs it, as root with apt)'
  : !unshareWorks ? 'unshare --pid needs root or user namespaces here' : '';

describe('the Dockerfile\'s entry point, as PID 1 of a new PID namespace (what a container runs)', () => {
  it.skipIf(skipContainer !== '')(`forwards docker stop's SIGTERM to the connector, which stops gracefully and exits 0${skipContainer ? ` (skipped: ${skipContainer})` : ''}`, { timeout: 120_000 }, async () => {
    const dir = await workDir();
    await writeOutputs(emulator, dir);
    const sink = join(dir, 'audit.ndjson');
    const { argv, env } = dockerfileCommand(dir);
    expect(argv[0]).toBe(tini);
    expect(env['O365_OUTPUTS_FILE']).toBe(join(dir, 'outputs.json'));
    const container = start(['unshare', '--pid', '--fork', '--mount-proc', '--kill-child', ...argv], env);
    expect(await until(hasRecords(sink)), container.stderr()).toBe(true);
    // PID 1 inside is unshare's child: tini, whose only child is the connector (Node, after the launcher's exec).
    const [init] = childrenOf(container.child.pid!);
    expect(readFileSync(`/proc/${init}/status`, 'utf8')).toMatch(/^NSpid:\s+\d+\s+1$/m);
    expect(readlinkSync(`/proc/${init}/exe`)).toBe(tini);
    const [connector] = childrenOf(init!);
    expect(readFileSync(`/proc/${connector}/cmdline`, 'utf8').split('\0')).toContain(join(root, 'connector/bin.mjs'));
    process.kill(init!, 'SIGTERM'); // what `docker stop` does
    expect(await container.exit, container.stderr()).toBe(0);
    expect(container.stderr()).toMatch(/"signal":"SIGTERM".*stopping/);
    expect(container.stderr()).toMatch(/"msg":"run finished"/);
    await expectCleanHandOver(dir, join(dir, 'outputs.json'), sink);
  });
});
