/**
 * A real forward proxy (tinyproxy, from Debian; scripts/setup-test-deps.sh installs it) on a free port of
 * 127.0.0.1, with or without basic authentication, logging every CONNECT.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { freePort } from './rsyslog.ts';

export function tinyproxyUnavailable(): string | undefined {
  return spawnSync('tinyproxy', ['-v']).error ? 'tinyproxy is not installed (scripts/setup-test-deps.sh installs it, as root with apt)' : undefined;
}

export interface Tinyproxy {
  readonly port: number;
  readonly url: string;
  /** The hosts:ports it opened tunnels to (CONNECT), in order. */
  tunnels(): Promise<string[]>;
  stop(): Promise<void>;
}

export async function startTinyproxy(dir: string, auth?: { user: string; password: string }): Promise<Tinyproxy> {
  const port = await freePort();
  await chmod(dir, 0o777); // tinyproxy may drop to nobody: its log must stay writable
  const log = join(dir, 'tinyproxy.log');
  await writeFile(join(dir, 'tinyproxy.conf'), [
    `Port ${port}`, 'Listen 127.0.0.1', 'Timeout 60', `LogFile "${log}"`, 'LogLevel Connect', 'MaxClients 100', 'Allow 127.0.0.1',
    ...(auth ? [`BasicAuth ${auth.user} ${auth.password}`] : []), '',
  ].join('\n'));
  const child = spawn('tinyproxy', ['-d', '-c', join(dir, 'tinyproxy.conf')], { stdio: 'ignore' });
  const exited = new Promise<void>((resolveExit) => child.once('exit', () => resolveExit()));
  // Ready once it accepts connections.
  const { connect } = await import('node:net');
  for (let attempt = 0; ; attempt += 1) {
    const open = await new Promise<boolean>((resolveOpen) => {
      const socket = connect(port, '127.0.0.1', () => { socket.destroy(); resolveOpen(true); });
      socket.once('error', () => resolveOpen(false));
    });
    if (open) break;
    if (attempt > 100) throw new Error('tinyproxy did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port, url: `http://127.0.0.1:${port}`,
    tunnels: async () => {
      const text = await readFile(log, 'utf8').catch(() => '');
      return [...text.matchAll(/Request \(file descriptor \d+\): CONNECT (\S+) HTTP/g)].map((match) => match[1]!);
    },
    stop: async () => { child.kill('SIGTERM'); await exited; },
  };
}
