/**
 * A state directory opened as a single-tenant run opens it (`openStateDatabase`), as the view of `tenant` (default
 * '', the tenant of a directory written before fleet mode, which a named tenant adopts): closing the view closes
 * the database and releases the directory's lock.
 */
import { openStateDatabase, type OpenStateDatabaseOptions } from '../../../connector/state/sqlite/store.ts';
import type { StateStore } from '../../../connector/state/store.ts';
import { viewClosingDatabase } from '../../../connector/state/tenant-view.ts';

export async function openStateStore(dir: string, options: OpenStateDatabaseOptions & { readonly tenant?: string }): Promise<StateStore> {
  const tenant = options.tenant ?? '';
  return viewClosingDatabase(await openStateDatabase(dir, { ...options, adoptLegacyTenant: tenant }), tenant);
}
