/**
 * `--state` names the store: a directory (the embedded SQLite default) or a PostgreSQL URL (`postgres://…`, a
 * fleet's shared database). One place opens either, for `run` and `status`.
 */
import { resolve } from 'node:path';
import { isPostgresUrl, refusePasswordInStateUrl } from '../config/state-location.ts';
import { openPostgresDatabase } from './postgres/store.ts';
import { openStateDatabase, openStateDatabaseReadOnly, type OpenStateDatabaseOptions } from './sqlite/store.ts';
import type { StateDatabase } from './store.ts';

/** Opens the store for a run (a directory is locked for this process; a database is shared by the fleet). */
export async function openStateDatabaseAt(state: string, options: OpenStateDatabaseOptions & { readonly workerName: string }): Promise<StateDatabase> {
  if (!isPostgresUrl(state)) return openStateDatabase(resolve(state), options);
  refusePasswordInStateUrl(state);
  return openPostgresDatabase(state.trim(), { workerName: options.workerName, abortSignal: options.abortSignal });
}

/** Opens the store for reading only (`status`): no lock, nothing created. */
export async function openStateDatabaseReadOnlyAt(state: string): Promise<StateDatabase> {
  if (!isPostgresUrl(state)) return openStateDatabaseReadOnly(resolve(state));
  refusePasswordInStateUrl(state);
  return openPostgresDatabase(state.trim(), { workerName: 'status', readOnly: true });
}
