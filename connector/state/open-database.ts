/**
 * `--state` names the store: a directory (the embedded SQLite default) or a PostgreSQL URL (`postgres://…`, a
 * fleet's shared database). One place opens either, for `run` and `status`.
 */
import { resolve } from 'node:path';
import { isPostgresUrl, refusePasswordInStateUrl } from '../config/state-location.ts';
import { openPostgresDatabase } from './postgres/store.ts';
import { openStateDatabase, openStateDatabaseReadOnly } from './sqlite/store.ts';
import type { StateDatabase } from './store.ts';

export interface OpenDatabaseOptions {
  readonly workerName: string;
  readonly lockWaitMs: number;
  readonly abortSignal?: AbortSignal | undefined;
  readonly onLockWait?: (() => void) | undefined;
  /** A single-tenant run's tenant: a state directory of before fleet mode becomes its state (SQLite only). */
  readonly adoptLegacyTenant?: string | undefined;
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
