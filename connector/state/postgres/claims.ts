/**
 * Claims of units between the workers sharing the fleet database. A claim is a session-level advisory lock on the
 * unit's id (units.id), held by the worker's session (session.ts): the server releases it when the session ends.
 * Every commit of a unit checks, inside its transaction, that its session still holds the unit's lock
 * (`assertStillHeld`), and is refused (STATE_FENCED) otherwise: a worker that lost its session can never overwrite
 * the state of the worker that took its units over.
 */
import pg from 'pg';
import type { CollectedType } from '../../../contract/content-types.ts';
import { ConnectorError } from '../../core/errors.ts';
import { unitName, type UnitKey } from '../../core/commit.ts';
import type { UnitClaims, UnitHolder } from '../store.ts';
import { isStatementError } from './connection.ts';
import { advisoryNamespace } from './schema.ts';
import { fenced, sessionNamePrefix, type PostgresSession, type SessionConnection } from './session.ts';

type Read = <T>(text: string, values: unknown[]) => Promise<T[]>;

export class PostgresClaims implements UnitClaims {
  readonly #session: PostgresSession;
  readonly #read: Read;
  /** Whether the schema exists (a read-only open of a database no worker has migrated holds no units). */
  readonly #schema: boolean;
  /** Unit ids never change once made: looked up once. */
  readonly #unitIds = new Map<string, number>();

  constructor(session: PostgresSession, read: Read, schema: boolean) {
    this.#session = session;
    this.#read = read;
    this.#schema = schema;
  }

  async tryClaimSome(units: readonly UnitKey[], max: number): Promise<UnitKey[]> {
    const connection = this.#session.writable();
    if (units.length === 0 || max <= 0) return [];
    const ids = await this.#unitIdsOf(connection, units);
    return this.#session.run(connection, undefined, async (client) => {
      const mine = units.filter((_, i) => connection.held.has(ids[i]!)).slice(0, max);
      const free = ids.filter((id) => !connection.held.has(id));
      const wanted = max - mine.length;
      if (wanted <= 0 || free.length === 0) return mine;
      // The filter runs row by row as the limit pulls them: no lock is taken beyond the `wanted`th success.
      let rows: Array<{ id: number }>;
      try {
        rows = (await client.query<{ id: number }>('SELECT c.id FROM unnest($2::integer[]) AS c (id) WHERE pg_try_advisory_lock($1, c.id) LIMIT $3', [advisoryNamespace, free, wanted])).rows;
      } catch (error) {
        if (!isStatementError(error)) throw error;
        // Session locks taken before the statement failed stay with the session: give back those nobody knows of.
        await releaseUnknownLocks(client, connection);
        throw error.code === '53200' ? locksExhausted(this.#session.workerName, connection.held.size, error) : error;
      }
      const claimed = new Set(rows.map((row) => Number(row.id)));
      if (claimed.size > 0) {
        await client.query('UPDATE units SET claimed_by = $2, claimed_pid = pg_backend_pid(), claimed_at = now() WHERE id = ANY($1::integer[])', [[...claimed], this.#session.workerName]);
      }
      const taken: UnitKey[] = [];
      units.forEach((unit, i) => {
        if (!claimed.has(ids[i]!)) return;
        connection.held.set(ids[i]!, { tenant: unit.tenant, contentType: unit.contentType });
        taken.push(unit);
      });
      return [...mine, ...taken];
    });
  }

  async release(unit: UnitKey): Promise<void> {
    const connection = this.#session.current;
    const id = this.#unitIds.get(unitName(unit));
    if (!connection || id === undefined || !connection.held.has(id)) return;
    connection.held.delete(id);
    if (connection.lost) return; // the server gave it back with the session
    await this.#session.run(connection, undefined, (client) => client.query('SELECT pg_advisory_unlock($1, $2)', [advisoryNamespace, id]));
  }

  async workers(): Promise<number> {
    const rows = await this.#read<{ workers: number }>(`SELECT count(*)::integer AS workers FROM pg_stat_activity
      WHERE datname = current_database() AND starts_with(application_name, $1)`, [sessionNamePrefix]);
    return rows[0]!.workers;
  }

  async holders(): Promise<UnitHolder[]> {
    if (!this.#schema) return [];
    const rows = await this.#read<{ tenant: string; content_type: CollectedType; worker: string; since: Date | null }>(`
      SELECT u.tenant, u.content_type,
        CASE WHEN u.claimed_pid = l.pid THEN u.claimed_by ELSE substr(a.application_name, $2) END AS worker,
        CASE WHEN u.claimed_pid = l.pid THEN u.claimed_at ELSE a.backend_start END AS since
      FROM pg_locks l JOIN units u ON l.objid = u.id::oid JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.classid = $1::oid AND l.objsubid = 2 AND l.granted AND a.datname = current_database()
      ORDER BY u.tenant COLLATE "C", u.content_type COLLATE "C"`, [advisoryNamespace, sessionNamePrefix.length + 1]);
    return rows.map((row) => ({ unit: { tenant: row.tenant, contentType: row.content_type }, worker: row.worker, since: row.since?.toISOString() }));
  }

  onLost(listener: (reason: Error) => void): void {
    this.#session.onLost(listener);
  }

  reconnect(): Promise<void> {
    return this.#session.reconnect();
  }

  /** The ids of `units`, in their order: made in one statement for those new to the database. */
  async #unitIdsOf(connection: SessionConnection, units: readonly UnitKey[]): Promise<number[]> {
    const missing = units.filter((unit) => !this.#unitIds.has(unitName(unit)));
    if (missing.length > 0) {
      const tenants = missing.map((unit) => unit.tenant);
      const types = missing.map((unit) => unit.contentType);
      const rows = await this.#session.run(connection, undefined, async (client) => {
        await client.query(`INSERT INTO units (tenant, content_type) SELECT * FROM unnest($1::text[], $2::text[])
          ON CONFLICT (tenant, content_type) DO NOTHING`, [tenants, types]);
        return (await client.query<{ id: number; tenant: string; content_type: CollectedType }>(`SELECT u.id, u.tenant, u.content_type FROM units u
          JOIN unnest($1::text[], $2::text[]) AS k (tenant, content_type) ON u.tenant = k.tenant AND u.content_type = k.content_type`, [tenants, types])).rows;
      });
      for (const row of rows) this.#unitIds.set(unitName({ tenant: row.tenant, contentType: row.content_type }), Number(row.id));
    }
    return units.map((unit) => this.#unitIds.get(unitName(unit))!);
  }
}

/** The fence, inside a commit's transaction: STATE_FENCED unless this session still holds the unit's lock. */
export async function assertStillHeld(client: pg.Client, unit: UnitKey, worker: string): Promise<void> {
  const { rows } = await client.query<{ held: boolean }>(`SELECT EXISTS (SELECT 1 FROM units u JOIN pg_locks l ON l.objid = u.id::oid
    WHERE u.tenant = $2 AND u.content_type = $3 AND l.locktype = 'advisory' AND l.classid = $1::oid AND l.objsubid = 2
      AND l.pid = pg_backend_pid() AND l.granted) AS held`, [advisoryNamespace, unit.tenant, unit.contentType]);
  if (!rows[0]!.held) throw fenced(unit, worker, 'another worker may hold it now');
}

async function releaseUnknownLocks(client: pg.Client, connection: SessionConnection): Promise<void> {
  const { rows } = await client.query<{ id: number }>(`SELECT objid::bigint AS id FROM pg_locks
    WHERE locktype = 'advisory' AND classid = $1::oid AND objsubid = 2 AND pid = pg_backend_pid() AND granted`, [advisoryNamespace]);
  for (const { id } of rows) if (!connection.held.has(Number(id))) await client.query('SELECT pg_advisory_unlock($1, $2)', [advisoryNamespace, Number(id)]);
}

/** PostgreSQL's shared lock table is full: every held unit is one advisory lock in it. */
function locksExhausted(worker: string, held: number, cause: unknown): ConnectorError {
  return new ConnectorError('STATE_LOCKS_EXHAUSTED', `PostgreSQL has no room for more advisory locks (worker ${worker} holds ${held} units; every unit held by any worker takes one slot of the server's lock table)`, {
    fix: 'raise max_locks_per_transaction on the server (the table holds about max_locks_per_transaction × max_connections locks; e.g. 256 for 20,000 units with 100 connections) and restart it',
    cause, retryable: true,
  });
}
