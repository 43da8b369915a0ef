/**
 * A real PostgreSQL for the fleet store tests: a throwaway cluster (`initdb` into a temp dir, `postgres` on a free
 * port of 127.0.0.1 with password logins and its socket in the temp dir, without fsync), stopped and removed
 * afterwards. PostgreSQL refuses to run as root: as root, the cluster runs as the `postgres` system user. With
 * O365_TEST_POSTGRES_URL (a superuser's URL) that server is used instead. Either way every `newDatabase()` is a
 * database of its own, dropped at `stop()`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { freePort } from './rsyslog.ts';

const externalUrl = process.env['O365_TEST_POSTGRES_URL'];

/** Why the PostgreSQL tests cannot run here, or undefined when they can. */
export function postgresUnavailable(): string | undefined {
  if (externalUrl) return undefined;
  if (!binDir()) return 'PostgreSQL is not installed (run scripts/setup-test-deps.sh as root, or set O365_TEST_POSTGRES_URL)';
  if (process.getuid?.() === 0 && !postgresUser()) return 'running as root and there is no postgres system user to run PostgreSQL as';
  return undefined;
}

/**
 * A database URL as the command line takes it: without the password (which the connector refuses there, since every
 * user could read it in the process list), the password going in PGPASSWORD.
 */
export function forCommandLine(url: string): { state: string; env: { PGPASSWORD: string } } {
  const parsed = new URL(url);
  const password = decodeURIComponent(parsed.password);
  parsed.password = '';
  return { state: parsed.toString(), env: { PGPASSWORD: password } };
}

/** `args` with the password of its `--state` URL moved into the environment, as a user gives it (see forCommandLine). */
export function passwordOffCommandLine(args: readonly string[]): { args: string[]; env: Record<string, string> } {
  const at = args.indexOf('--state');
  const state = at >= 0 ? args[at + 1] : undefined;
  if (state === undefined || !/^postgres(ql)?:\/\//.test(state) || new URL(state).password === '') return { args: [...args], env: {} };
  const line = forCommandLine(state);
  return { args: [...args.slice(0, at + 1), line.state, ...args.slice(at + 2)], env: line.env };
}

export interface TestPostgres {
  /** A new empty database: its URL (with the password). */
  newDatabase(): Promise<string>;
  /** Runs SQL as the superuser on `url`'s database (e.g. pg_terminate_backend from a third connection). */
  admin<T extends pg.QueryResultRow>(url: string, sql: string, values?: unknown[]): Promise<T[]>;
  stop(): Promise<void>;
  /**
   * The server stopped (fast shutdown, as `pg_ctl stop -m fast`: every session ends) and, with `startServer`, started
   * again with its data; `restart` does both (`pg_ctl restart`). Only a throwaway cluster: undefined with O365_TEST_POSTGRES_URL.
   */
  readonly stopServer: (() => Promise<void>) | undefined;
  readonly startServer: (() => Promise<void>) | undefined;
  readonly restart: (() => Promise<void>) | undefined;
}

/**
 * `settings`: server settings of a throwaway cluster (`-c name=value`), e.g. a small lock table; ignored with
 * O365_TEST_POSTGRES_URL.
 */
export async function startTestPostgres(settings: Readonly<Record<string, string>> = {}): Promise<TestPostgres> {
  const server: Server = externalUrl ? { url: externalUrl, stop: async () => {} } : await startCluster(settings);
  const created: string[] = [];
  const admin = async <T extends pg.QueryResultRow>(url: string, sql: string, values: unknown[] = []) => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return (await client.query<T>(sql, values)).rows;
    } finally {
      await client.end();
    }
  };
  return {
    async newDatabase() {
      const name = `o365_test_${process.pid}_${randomBytes(4).toString('hex')}`;
      await admin(server.url, `CREATE DATABASE ${name}`);
      created.push(name);
      const url = new URL(server.url);
      url.pathname = `/${name}`;
      return url.toString();
    },
    admin,
    stopServer: server.halt,
    startServer: server.launch,
    restart: server.halt && server.launch ? async () => { await server.halt!(); await server.launch!(); } : undefined,
    async stop() {
      try {
        if (externalUrl) for (const name of created) await admin(server.url, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await server.stop();
      }
    },
  };
}

interface Server {
  readonly url: string;
  stop(): Promise<void>;
  /** A throwaway cluster's server stopped (fast shutdown) and started again, on the same port and data. */
  halt?(): Promise<void>;
  launch?(): Promise<void>;
}

async function startCluster(settings: Readonly<Record<string, string>>): Promise<Server> {
  const bin = binDir();
  if (!bin) throw new Error(postgresUnavailable());
  const owner = process.getuid?.() === 0 ? postgresUser() : undefined;
  const dir = await mkdtemp(join(tmpdir(), 'o365-pg-'));
  const password = `test-${randomBytes(12).toString('hex')}`;
  const passwordFile = join(dir, 'password');
  await writeFile(passwordFile, `${password}\n`, { mode: 0o600 });
  if (owner) for (const path of [dir, passwordFile]) chownSync(path, owner.uid, owner.gid);
  const as = owner ? { uid: owner.uid, gid: owner.gid } : {};
  const env = { ...process.env, LC_ALL: 'C', LANG: 'C' };
  const init = spawnSync(join(bin, 'initdb'), ['-D', join(dir, 'data'), '-U', 'postgres', '--pwfile', passwordFile, '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8', '--no-sync'], { ...as, env, encoding: 'utf8', cwd: dir });
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr || init.error?.message}`);
  const port = await freePort();
  let stderr = '';
  const url = `postgresql://postgres:${password}@127.0.0.1:${port}/postgres`;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  /** Starts the server on the cluster (again), and waits until it accepts connections. */
  const launch = async () => {
    const server = spawn(join(bin, 'postgres'), ['-D', join(dir, 'data'), '-p', String(port), '-h', '127.0.0.1', '-k', dir,
      '-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off', '-c', 'max_connections=60', '-c', 'shared_buffers=16MB',
      // Room for the advisory locks of thousands of units (the bench's fleet holds 10,000), as the README asks of a fleet's server.
      '-c', 'max_locks_per_transaction=512', ...Object.entries(settings).flatMap(([name, value]) => ['-c', `${name}=${value}`])], { ...as, env, cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    child = server;
    server.stderr!.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString()).slice(-4000); });
    exited = new Promise<void>((resolve) => server.once('exit', () => resolve()));
    const deadline = Date.now() + 30_000;
    for (;;) {
      const client = new pg.Client({ connectionString: url });
      try {
        await client.connect();
        await client.end();
        return;
      } catch (error) {
        await client.end().catch(() => {});
        if (server.exitCode !== null || Date.now() > deadline) throw new Error(`PostgreSQL did not start: ${(error as Error).message}\n${stderr}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  };
  /** Fast shutdown (`pg_ctl stop -m fast`): every session is ended. */
  const halt = async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      child.kill('SIGINT');
      await exited;
    }
  };
  const stop = async () => {
    await halt();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await launch();
  } catch (error) {
    await stop();
    throw error;
  }
  return { url, stop, halt, launch };
}

/** The server binaries of the newest PostgreSQL installed (Debian keeps them in /usr/lib/postgresql/<version>/bin). */
function binDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a));
    if (versions[0]) return join(root, versions[0], 'bin');
  }
  const probe = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  const dir = probe.status === 0 ? probe.stdout.trim() : '';
  return dir && existsSync(join(dir, 'initdb')) ? dir : undefined;
}

function postgresUser(): { uid: number; gid: number } | undefined {
  const uid = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (uid.status !== 0 || gid.status !== 0) return undefined;
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}
