/**
 * How the connector connects to a PostgreSQL state URL, with the password from where libpq's tools take it: the
 * URL's `passwordFile=<path>` parameter (this connector's, read at every connection, so a rotated file is used at
 * once), `PGPASSWORD`, or a password file (`PGPASSFILE`, else `~/.pgpass`, through the pgpass module pg itself uses).
 * A password written into the URL is accepted here (tests, library use); the CLI refuses it (see open-database.ts).
 */
import { readFileSync } from 'node:fs';
import type pg from 'pg';
import { parseIntoClientConfig } from 'pg-connection-string';
import pgpass from 'pgpass';
import { ConnectorError } from '../../core/errors.ts';
import { registerSecret } from '../../observe/secret-values.ts';

/** The URL parameter naming a file that holds the password (its first line). */
export const passwordFileParameter = 'passwordFile';

/** The client configuration of `url`: host, port, database, user, TLS as the URL says, and where the password comes from. */
export function postgresClientConfig(url: string, env: NodeJS.ProcessEnv = process.env): pg.ClientConfig {
  const config: Record<string, unknown> = { ...parseIntoClientConfig(url) };
  const passwordFile = typeof config[passwordFileParameter] === 'string' ? config[passwordFileParameter] as string : undefined;
  delete config[passwordFileParameter];
  if (config['user'] === '') delete config['user'];
  if (typeof config['password'] === 'string' && config['password'] !== '') {
    registerSecret(config['password']);
    return config;
  }
  registerSecret(env['PGPASSWORD']);
  if (passwordFile !== undefined) readPasswordFile(passwordFile);
  config['password'] = async (connection: pgpass.ConnectionInfo) => {
    if (passwordFile !== undefined) return readPasswordFile(passwordFile);
    if (env['PGPASSWORD'] !== undefined) return env['PGPASSWORD'];
    const found = await new Promise<string | undefined>((resolve) => pgpass(connection, resolve));
    registerSecret(found);
    return found;
  };
  return config;
}

function readPasswordFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConnectorError('CONFIG_INVALID', `--state ${passwordFileParameter}=${path} cannot be read: ${(error as NodeJS.ErrnoException).code ?? 'error'}`, { fix: 'give the path of a file this user may read, holding the password on its first line' });
  }
  const password = text.split(/\r?\n/)[0]!;
  if (password === '') throw new ConnectorError('CONFIG_INVALID', `--state ${passwordFileParameter}=${path} is empty`, { fix: 'write the password on its first line' });
  registerSecret(password);
  return password;
}
