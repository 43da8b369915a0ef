/**
 * The state store: where each content type stands, what was delivered, and where each sink stands, behind one
 * interface. The pipeline is its only writer and hands it immutable commits; the store applies each commit in
 * one transaction (all of it, or after a crash none of it). The embedded default is SQLite (sqlite/store.ts); a
 * fleet of workers shares PostgreSQL (postgres/store.ts). Both keep the same rows (keyed by tenant and content
 * type, and by sink name), answer set-membership queries in one statement, and apply a commit in one transaction;
 * test/connector/state/store-contract.ts holds them to the same promises.
 */
import type { CollectedType } from '../../contract/content-types.ts';
import type { SinkPosition } from '../core/records.ts';
import type { Commit, CursorState, RecordKey, UnitKey } from '../core/commit.ts';

/**
 * One tenant's state, as the pipeline of that tenant's content types reads and commits it. A store opened for
 * one tenant (`run --outputs`) is such a view; a fleet database (`run --tenants`) hands out one view per tenant
 * (`StateDatabase.tenant`). Sink positions belong to the process (the sinks are its own), not to a tenant: every
 * view of one database answers the same positions, and a commit's positions replace them.
 */
export interface StateStore {
  /** For logs and status: where the state lives (a directory, a database without credentials). */
  readonly location: string;
  /** Where this tenant's records set aside (not audit records) are kept, in words for a log line: a file, a table. */
  readonly deadLetters: string;
  /** Every content type's cursor that has ever been committed. */
  cursors(): Promise<Map<CollectedType, CursorState>>;
  /** The sink positions of the latest commit, by sink name. */
  sinkPositions(): Promise<Record<string, SinkPosition>>;
  /** Which of `contentIds` were delivered (and are still remembered) for this content type. */
  deliveredBlobs(contentType: CollectedType, contentIds: readonly string[]): Promise<Set<string>>;
  /** The Ids of those of `keys` that were delivered (and are still remembered) for this content type. */
  seenRecords(contentType: CollectedType, keys: readonly RecordKey[]): Promise<Set<string>>;
  /** Applies the commit in one durable transaction: resolved means a crash afterwards still finds it. */
  commit(commit: Commit): Promise<void>;
  close(): Promise<void>;
}

/** Who holds a unit now (status's fleet view). */
export interface UnitHolder {
  readonly unit: UnitKey;
  /** The holding worker's name (`--worker-name`). */
  readonly worker: string;
  /** Since when its database session holds the unit (ISO), when the store knows. */
  readonly since?: string | undefined;
}

/**
 * Exclusivity of units between the workers sharing one database. The database itself decides (PostgreSQL:
 * session-level advisory locks, which the server releases when the holder's connection ends), never timers of
 * our own; and every commit of a unit is refused (STATE_FENCED) unless its session still holds the unit.
 */
export interface UnitClaims {
  /**
   * Tries `units` in order and takes free ones until this worker holds `max` of them (those it held already
   * count): the ones it holds now, in one round trip however many (a worker of thousands of units claims them
   * all at once).
   */
  tryClaimSome(units: readonly UnitKey[], max: number): Promise<UnitKey[]>;
  /** Gives the unit up (its collection has stopped and committed). */
  release(unit: UnitKey): Promise<void>;
  /** The workers connected now, this one included (a fair share is units / workers). */
  workers(): Promise<number>;
  /** Every unit held by any worker. */
  holders(): Promise<UnitHolder[]>;
  /**
   * Fires (once per session) when this worker's session may have ended: every claim is gone, and the units
   * must stop at once. `reconnect` then opens a new session, holding nothing.
   */
  onLost(listener: (reason: Error) => void): void;
  /** A new session after a loss; rejects while the database cannot be reached. */
  reconnect(): Promise<void>;
}

/** Every tenant's state in one database: the SQLite file of a state directory, or a PostgreSQL database. */
export interface StateDatabase {
  /** For logs and status, without credentials. */
  readonly location: string;
  /** The view of one tenant (created on its first commit). */
  tenant(tenantId: string): StateStore;
  /** The tenants that have state, sorted. */
  tenants(): Promise<string[]>;
  readonly claims: UnitClaims;
  close(): Promise<void>;
}
