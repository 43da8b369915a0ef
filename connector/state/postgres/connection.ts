/**
 * How the connector connects to a PostgreSQL state URL, with the password from where libpq's tools take it: the
 * URL's `passwordFile=<path>` parameter (this connector's, read at every connection, so a rotated file is used at
 * once), `PGPASSWORD`, or a password file (`PGPASSFILE`, else `~/.pgpass`, through the pgpass module pg itself uses).
 * A password written into the URL is accepted here (tests, library use); the CLI refuses it (see open-database.ts).
 * A failure to reach or use the server becomes one line naming host:port and the database, never the password.
 */
import { accessSync, constants } from 'node:fs';
import pg from 'pg';
import { parseIntoClientConfig } from 'pg-connection-string';
import pgpass from 'pgpass';
import { ConnectorError } from '../../core/errors.ts';
import { maxSettingFileBytes, readSmallFile } from '../../core/small-file.ts';
import { registerSecret } from '../../observe/secret-values.ts';

/** The URL parameter naming a file that holds the password (its first line). */
export const passwordFileParameter = 'passwordFile';

const connectTimeoutMs = 10_000;
/** Connections that go quiet are found by the kernel too (the session's probe is the quicker of the two). */
const keepAliveDelayMs = 5_000;

/** BIGINT columns read as numbers (counters and epoch values stay far below 2^53). */
const types = new pg.TypeOverrides();
types.setTypeParser(pg.types.builtins.INT8, (value: string) => Number(value));

/** Where the state database is, as logs and errors name it. */
export interface Target {
  /** postgresql://user@host:port/database, without the password. */
  readonly location: string;
  readonly hostPort: string;
  readonly database: string;
  readonly user: string;
  readonly password: string | undefined;
}

/**
 * How every connection of this connector to `url` is made (a session's, or the read pool's: `application_name` tells
 * them apart): host, port, database, user, TLS as the URL says, and where the password comes from.
 */
export function connectionConfig(url: string, applicationName: string): pg.ClientConfig {
  const config: Record<string, unknown> = {
    ...parseIntoClientConfig(url), types, keepAlive: true, keepAliveInitialDelayMillis: keepAliveDelayMs,
    connectionTimeoutMillis: connectTimeoutMs, application_name: applicationName,
  };
  const passwordFile = typeof config[passwordFileParameter] === 'string' ? config[passwordFileParameter] as string : undefined;
  delete config[passwordFileParameter];
  if (config['user'] === '') delete config['user'];
  if (typeof config['password'] === 'string' && config['password'] !== '') {
    registerSecret(config['password']);
    return config;
  }
  registerSecret(process.env['PGPASSWORD']);
  if (passwordFile !== undefined) readPasswordFile(passwordFile);
  config['password'] = async (connection: pgpass.ConnectionInfo) => {
    if (passwordFile !== undefined) return readPasswordFile(passwordFile);
    if (process.env['PGPASSWORD'] !== undefined) return process.env['PGPASSWORD'];
    const found = await new Promise<string | undefined>((resolve) => pgpass(connection, resolve));
    registerSecret(found);
    return found;
  };
  return config;
}

function readPasswordFile(path: string): string {
  let text: string;
  try {
    text = readSmallFile(path, maxSettingFileBytes).toString('utf8');
  } catch (error) {
    throw new ConnectorError('CONFIG_INVALID', `--state ${passwordFileParameter}=${path} ${(error as Error).message}`, { fix: 'give the path of a file this user may read, holding the password on its first line' });
  }
  const password = text.split(/\r?\n/)[0]!;
  if (password === '') throw new ConnectorError('CONFIG_INVALID', `--state ${passwordFileParameter}=${path} is empty`, { fix: 'write the password on its first line' });
  registerSecret(password);
  return password;
}

export function targetOf(url: string): Target {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConnectorError('CONFIG_INVALID', 'the state database URL is not a URL', { fix: 'give it as postgresql://user@host:5432/database' });
  }
  if (parsed.protocol !== 'postgresql:' && parsed.protocol !== 'postgres:') {
    throw new ConnectorError('CONFIG_INVALID', `the state database URL has scheme ${parsed.protocol.slice(0, -1)}, not postgresql`, { fix: 'give it as postgresql://user@host:5432/database' });
  }
  refuseUnreadableTlsFiles(parsed);
  const decoded = (part: string, what: string) => {
    try {
      return decodeURIComponent(part);
    } catch {
      throw new ConnectorError('CONFIG_INVALID', `the ${what} of the state database URL has a malformed %-escape`, { fix: 'write each % as %25, or a character as %XX with two hex digits' });
    }
  };
  const password = parsed.password === '' ? undefined : decoded(parsed.password, 'password');
  const user = decoded(parsed.username, 'user') || process.env['PGUSER'] || process.env['USER'] || 'postgres';
  // A socket directory may be given as ?host=/run/postgresql (then the hostname is empty).
  const host = parsed.hostname || parsed.searchParams.get('host') || 'localhost';
  const port = parsed.port || parsed.searchParams.get('port') || '5432';
  const database = decoded(parsed.pathname.slice(1), 'database name') || user;
  const hostPort = `${host}:${port}`;
  return { location: `postgresql://${encodeURIComponent(user)}@${host.includes('/') ? `${encodeURIComponent(host)}` : host}:${port}/${encodeURIComponent(database)}`, hostPort, database, user, password };
}

/** `sslrootcert`, `sslcert` and `sslkey` are files the driver reads when it connects: one it cannot read is a configuration error, named. */
function refuseUnreadableTlsFiles(url: URL): void {
  for (const parameter of ['sslrootcert', 'sslcert', 'sslkey']) {
    const path = url.searchParams.get(parameter);
    // sslrootcert=system: the system's CAs (libpq's spelling), no file.
    if (path === null || (parameter === 'sslrootcert' && path === 'system')) continue;
    try {
      accessSync(path, constants.R_OK);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'error';
      throw new ConnectorError('CONFIG_INVALID', `the state database URL's ${parameter} ${path} cannot be read: ${code === 'ENOENT' ? 'no such file' : code}`, {
        fix: `give ${parameter} the path of a PEM file the connector's user may read${parameter === 'sslrootcert' ? ' (the CA that signed the server\'s certificate)' : ''}`,
      });
    }
  }
}

/** Runs a connect, mapping its failures (and an abort) to one line naming the server and the database. */
export async function reachable<T>(target: Target, abortSignal: AbortSignal | undefined, connect: () => Promise<T>, onAbort?: () => void): Promise<T> {
  abortSignal?.throwIfAborted();
  const aborted = Promise.withResolvers<never>();
  const listener = () => { onAbort?.(); aborted.reject(abortSignal!.reason as Error); };
  abortSignal?.addEventListener('abort', listener, { once: true });
  try {
    return await Promise.race([connect(), aborted.promise]);
  } catch (error) {
    if (abortSignal?.aborted) throw abortSignal.reason;
    throw error instanceof ConnectorError ? error : connectionError(error, target);
  } finally {
    abortSignal?.removeEventListener('abort', listener);
  }
}

/** A failure to reach or use the server as one line: what failed, where (host:port/database), and the fix. */
export function connectionError(error: unknown, target: Target): ConnectorError {
  const code = (error as { code?: string }).code;
  const message = scrub(oneLine((error as Error).message ?? String(error)), target);
  const where = `${target.hostPort}/${target.database}`;
  if (code === '28P01' || code === '28000' || /password/i.test(message)) {
    return new ConnectorError('STATE_DENIED', `PostgreSQL at ${where} refused user ${target.user}: ${message}`, { fix: 'correct the user of the state database URL, or its password (PGPASSWORD, a PGPASSFILE or ~/.pgpass, or the URL\'s passwordFile=<path>), or the server\'s pg_hba.conf', cause: error });
  }
  if (code === '3D000') {
    return new ConnectorError('STATE_NO_DATABASE', `PostgreSQL at ${target.hostPort} has no database ${target.database}`, { fix: `create it (createdb -h ${target.hostPort.replace(/:(\d+)$/, ' -p $1')} -U ${target.user} ${target.database}), or correct the URL`, cause: error });
  }
  if (code === '42501') {
    return new ConnectorError('STATE_DENIED', `PostgreSQL at ${where}: user ${target.user} may not create or use the connector's tables: ${message}`, { fix: `grant it (GRANT CREATE, USAGE ON SCHEMA public TO ${target.user}), or give the connector a database of its own`, cause: error });
  }
  return new ConnectorError('STATE_UNREACHABLE', `cannot reach PostgreSQL at ${where}: ${code && !message.includes(code) ? `${code} ` : ''}${message}`, {
    fix: 'start the server, or correct the host, port and database of the state database URL', cause: error, retryable: true,
  });
}

/**
 * A statement the server refused, on a connection that is still there: not SQLSTATE classes 08 (connection
 * exception) or 57 (operator intervention, e.g. terminated), nor a failure of the connection itself.
 */
export function isStatementError(error: unknown): error is pg.DatabaseError {
  return error instanceof pg.DatabaseError && !/^(08|57)/.test(error.code ?? '');
}

/** A message with the password cut out, whatever echoed it. */
function scrub(message: string, target: Target): string {
  return target.password ? message.split(target.password).join('[redacted]') : message;
}

export function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}
