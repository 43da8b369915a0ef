/**
 * The connector as a supervisor runs it, for end-to-end tests: a child process in its own process group with its
 * output kept, a deadline on its exit, and a GET on its `--listen` address.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '../..');

export interface ConnectorProcess {
  readonly child: ChildProcess;
  readonly done: Promise<number | null>;
  stdout(): string;
  stderr(): string;
}

/**
 * `o365-connector <args>` (the checkout's `connector/bin.mjs`, or `entry`) on `node` (this one by default), started
 * through `prefix` (e.g. setpriv) when given, its log at info.
 */
export function startConnector(args: readonly string[], options: { env?: NodeJS.ProcessEnv; prefix?: readonly string[]; node?: string; entry?: string } = {}): ConnectorProcess {
  const [command, ...rest] = [...(options.prefix ?? []), options.node ?? process.execPath, options.entry ?? join(root, 'connector/bin.mjs'), ...args];
  const child = spawn(command!, rest, { env: { ...process.env, O365_LOG_LEVEL: 'info', ...options.env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
  child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  const done = new Promise<number | null>((resolvePromise) => child.on('exit', (code) => resolvePromise(code)));
  return { child, done, stdout: () => stdout, stderr: () => stderr };
}

/** SIGKILL to its process group, unless it has exited. */
export function killConnector(run: ConnectorProcess): void {
  if (run.child.exitCode === null && run.child.signalCode === null) process.kill(-run.child.pid!, 'SIGKILL');
}

/** Its exit code; a failure naming what it said when it has not exited within `ms` (it is killed then). */
export async function exitWithin(run: ConnectorProcess, ms: number): Promise<number | null> {
  const timer = setTimeout(() => killConnector(run), ms);
  const code = await run.done;
  clearTimeout(timer);
  if (run.child.signalCode === 'SIGKILL') throw new Error(`did not exit within ${ms} ms\nstdout: ${run.stdout()}\nstderr: ${run.stderr().slice(-3000)}`);
  return code;
}

/** A plain HTTP GET on a `--listen` address. */
export function httpGet(address: string, path: string): Promise<{ status: number; text: string }> {
  return new Promise((resolvePromise, reject) => {
    request(`http://${address}${path}`, (response) => {
      let text = '';
      response.on('data', (chunk: Buffer) => { text += chunk.toString(); });
      response.on('end', () => resolvePromise({ status: response.statusCode ?? 0, text }));
    }).on('error', reject).end();
  });
}
