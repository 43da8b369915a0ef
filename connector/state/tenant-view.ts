/**
 * One tenant's view of a database that keeps every tenant's state (SQLite's or PostgreSQL's): the same binding for
 * both stores, so that a view means the same whichever store answers.
 */
import type { CollectedType } from '../../contract/content-types.ts';
import type { SinkPosition } from '../core/records.ts';
import type { StateDatabase, StateStore } from './store.ts';
import type { Commit, CursorState, RecordKey } from '../core/commit.ts';

/** What a database answers of any tenant (synchronously, as SQLite does, or not). */
export interface TenantKeyedState {
  readonly location: string;
  /** Where `tenant`'s records set aside are kept, in words. */
  deadLettersOf(tenant: string): string;
  cursorsOf(tenant: string): Map<CollectedType, CursorState> | Promise<Map<CollectedType, CursorState>>;
  sinkPositions(): Record<string, SinkPosition> | Promise<Record<string, SinkPosition>>;
  deliveredBlobs(tenant: string, contentType: CollectedType, contentIds: readonly string[]): Set<string> | Promise<Set<string>>;
  seenRecords(tenant: string, contentType: CollectedType, keys: readonly RecordKey[]): Set<string> | Promise<Set<string>>;
  commit(tenant: string, commit: Commit): void | Promise<void>;
}

/** One tenant's view (closing it leaves the database open: it is shared). */
export class TenantView implements StateStore {
  readonly location: string;
  readonly deadLetters: string;
  readonly #database: TenantKeyedState;
  readonly #tenant: string;

  constructor(database: TenantKeyedState, tenant: string) {
    this.location = database.location;
    this.deadLetters = database.deadLettersOf(tenant);
    this.#database = database;
    this.#tenant = tenant;
  }

  async cursors(): Promise<Map<CollectedType, CursorState>> {
    return this.#database.cursorsOf(this.#tenant);
  }

  async sinkPositions(): Promise<Record<string, SinkPosition>> {
    return this.#database.sinkPositions();
  }

  async deliveredBlobs(contentType: CollectedType, contentIds: readonly string[]): Promise<Set<string>> {
    return this.#database.deliveredBlobs(this.#tenant, contentType, contentIds);
  }

  async seenRecords(contentType: CollectedType, keys: readonly RecordKey[]): Promise<Set<string>> {
    return this.#database.seenRecords(this.#tenant, contentType, keys);
  }

  async commit(commit: Commit): Promise<void> {
    await this.#database.commit(this.#tenant, commit);
  }

  async close(): Promise<void> {}
}

/**
 * The view of `tenant` that owns its database: a single-tenant run's store, which closes the database with it
 * (`tenant()` makes a new view on every call, so this one alone closes the database).
 */
export function viewClosingDatabase(database: StateDatabase, tenant: string): StateStore {
  return Object.assign(database.tenant(tenant), { close: () => database.close() });
}
