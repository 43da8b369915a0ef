/**
 * `--state` names the store: a directory (the embedded SQLite default) or a PostgreSQL URL (`postgres://…`, a
 * fleet's shared database). One place decides which, for `run` and `status`.
 */
import { resolve } from 'node:path';
import { ConnectorError } from '../core/errors.ts';
import { openPostgresDatabase } from './postgres/store.ts';
import { openStateDatabase, openStateDatabaseReadOnly } from './sqlite/store.ts';
import type { StateDatabase } from './store.ts';

export function isPostgresUrl(state: string): boolean {
  return /^postgres(?:ql)?:\/\//i.test(state.trim());
}

/**
 * A `--state` URL as the command line may give it: without a password, which every user of the machine could read
 * in the process list (as sink specs refuse credentials). The password comes from where PostgreSQL's own tools take it.
 */
export function refusePasswordInStateUrl(state: string): void {
  let password: string;
  try {
    password = new URL(state.trim()).password;
  } catch {
    throw new ConnectorError('CONFIG_INVALID', '--state: the PostgreSQL URL is not a URL', { fix: 'give it as postgresql://user@host:5432/database' });
  }
  if (password === '') return;
  throw new ConnectorError('CONFIG_INVALID', '--state: the PostgreSQL URL holds a password, which every user of this machine can read in the process list', {
    fix: 'remove it from the URL and give it as PGPASSWORD, in a PGPASSFILE or ~/.pgpass file (host:port:database:user:password, mode 0600), or in a file named by the URL\'s passwordFile=<path>',
  });
}

export interface OpenDatabaseOptions {
  readonly workerName: string;
  readonly lockWaitMs: number;
  readonly abortSignal?: AbortSignal | undefined;
  readonly onLockWait?: (() => void) | undefined;
}

/** Opens the store for a run (a directory is locked for this process; a database is shared by the fleet). */
export async function openStateDatabaseAt(state: string, options: OpenDatabaseOptions): Promise<StateDatabase> {
  if (isPostgresUrl(state)) {
    refusePasswordInStateUrl(state);
    return openPostgresDatabase(state.trim(), { workerName: options.workerName, ...(options.abortSignal ? { abortSignal: options.abortSignal } : {}) });
  }
  return openStateDatabase(resolve(state), options);
}

/** Opens the store for reading only (`status`): no lock, nothing created. */
export async function openStateDatabaseReadOnlyAt(state: string): Promise<StateDatabase> {
  if (isPostgresUrl(state)) {
    refusePasswordInStateUrl(state);
    return openPostgresDatabase(state.trim(), { workerName: 'status', readOnly: true });
  }
  return openStateDatabaseReadOnly(resolve(state));
}
