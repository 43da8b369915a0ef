/**
 * The fleet store: every tenant's state in one PostgreSQL database, shared by many worker processes, each of
 * which collects the units (tenant, content type) it has claimed (claims.ts). The schema is schema.ts.
 *
 * Each worker holds one session connection for its commits and claims (session.ts), and a small pool for reads.
 * Every commit of a unit checks, inside its transaction, that the session still holds the unit, and is refused
 * (STATE_FENCED) otherwise. Lookups and inserts of records and blobs are one statement per call, the keys
 * travelling as arrays that `unnest` unrolls in the server: never one query per record.
 */
import pg from 'pg';
import type { CollectedType } from '../../../contract/content-types.ts';
import { ConnectorError } from '../../core/errors.ts';
import type { SinkPosition } from '../../core/records.ts';
import { assertPositionsOnly, cursorsOf, type CursorRow, type ExpiredRow } from '../cursor-rows.ts';
import { planCommit, recordKeyPairs, upsertCursorSql } from '../commit-plan.ts';
import { assertKnownPostgresVersion, currentPostgresSchemaVersion, migratePostgres, postgresSchemaVersion } from './schema.ts';
import { contentTypeCodes } from '../sqlite/schema.ts';
import { connectionConfig, connectionError, isStatementError, reachable, targetOf, type Target } from './connection.ts';
import { assertStillHeld, PostgresClaims } from './claims.ts';
import { PostgresSession, type SessionConnection, type SessionOptions } from './session.ts';
import { TenantView } from '../tenant-view.ts';
import type { StateDatabase } from '../store.ts';
import type { Commit, CursorState, RecordKey, UnitKey } from '../../core/commit.ts';

export interface OpenPostgresDatabaseOptions extends SessionOptions {
  /** For `status`: no session, no claims, creates nothing; a database without the schema reads as no state. */
  readonly readOnly?: boolean | undefined;
}

/** The read pool's connections are not sessions of a worker (a different prefix keeps them out of the count). */
const readerNamePrefix = 'o365-connector-read:';
const readPoolSize = 2;
const upsertCursor = upsertCursorSql((i) => `$${i + 1}`);

/**
 * Opens the fleet's state database: connects this worker's session (application_name `o365-connector:<name>`),
 * brings the schema up to date (one worker at a time) and opens a small pool for reads. Unreachable server,
 * refused login or missing database: STATE_UNREACHABLE, STATE_DENIED or STATE_NO_DATABASE, naming host:port and
 * the database, never the password.
 */
export async function openPostgresDatabase(url: string, options: OpenPostgresDatabaseOptions): Promise<PostgresStateDatabase> {
  const target = targetOf(url);
  const pool = new pg.Pool({
    ...connectionConfig(url, options.readOnly ? 'o365-connector-status' : `${readerNamePrefix}${options.workerName}`),
    max: options.readOnly ? 1 : readPoolSize, idleTimeoutMillis: 30_000,
  });
  // An idle pooled connection that breaks is dropped by the pool; the next read opens another (or fails itself).
  pool.on('error', () => {});
  try {
    if (options.readOnly) {
      const version = await reachable(target, options.abortSignal, () => postgresSchemaVersion(pool, target.location));
      assertKnownPostgresVersion(version, target.location);
      if (version !== 0 && version < currentPostgresSchemaVersion) {
        throw new ConnectorError('STATE_VERSION', `${target.location} has state schema ${version}, this connector reads ${currentPostgresSchemaVersion}`, { fix: 'run a worker of this version once to migrate it, then ask again' });
      }
      return new PostgresStateDatabase(target, pool, new PostgresSession(url, target, options, undefined), version !== 0);
    }
    const session = await PostgresSession.open(url, target, options, (client) => migratePostgres(client, target.location));
    return new PostgresStateDatabase(target, pool, session, true);
  } catch (error) {
    await pool.end().catch(() => {});
    throw error;
  }
}

/** Every tenant's state in one PostgreSQL database, as one worker sees it. */
export class PostgresStateDatabase implements StateDatabase {
  readonly location: string;
  readonly claims: PostgresClaims;
  readonly #target: Target;
  readonly #pool: pg.Pool;
  readonly #session: PostgresSession;
  /** Whether the schema exists (a read-only open of a database no worker has migrated reads as no state). */
  readonly #schema: boolean;
  /** Tenant codes never change once made: looked up once. */
  readonly #tenantCodes = new Map<string, number>();

  constructor(target: Target, pool: pg.Pool, session: PostgresSession, schema: boolean) {
    this.location = target.location;
    this.#target = target;
    this.#pool = pool;
    this.#session = session;
    this.#schema = schema;
    this.claims = new PostgresClaims(session, (text, values) => this.#read(text, values), schema);
  }

  tenant(tenantId: string): TenantView {
    return new TenantView(this, tenantId);
  }

  deadLettersOf(tenant: string): string {
    return `the dead_letters table of ${this.location} (tenant ${tenant})`;
  }

  async tenants(): Promise<string[]> {
    if (!this.#schema) return [];
    return (await this.#read<{ tenant: string }>('SELECT tenant FROM cursors GROUP BY tenant ORDER BY tenant COLLATE "C"', [])).map((row) => row.tenant);
  }

  async close(): Promise<void> {
    if (this.#session.closed) return;
    await this.#session.close();
    await this.#pool.end().catch(() => {});
  }

  // --- reads (the pool) ---

  /** @internal the reads and commits of the tenant views */
  async cursorsOf(tenant: string): Promise<Map<CollectedType, CursorState>> {
    if (!this.#schema) return new Map();
    const [cursorRows, expiredRows] = await Promise.all([
      this.#read<CursorRow>('SELECT * FROM cursors WHERE tenant = $1 ORDER BY content_type COLLATE "C"', [tenant]),
      this.#read<ExpiredRow>('SELECT content_type, content_id, content_created, detected_at FROM expired_blobs WHERE tenant = $1 ORDER BY content_type COLLATE "C", seq', [tenant]),
    ]);
    return cursorsOf(cursorRows, expiredRows, this.location, (r) =>
      `set it to an ISO time (UPDATE cursors SET checkpoint = '2026-11-25T00:00:00.000Z' WHERE tenant = '${r.tenant}' AND content_type = '${r.content_type}'); records after that time are delivered again only if not remembered`);
  }

  async sinkPositions(): Promise<Record<string, SinkPosition>> {
    if (!this.#schema) return {};
    const rows = await this.#read<{ name: string; position: string }>('SELECT name, position FROM sink_positions WHERE worker = $1 ORDER BY name COLLATE "C"', [this.#session.workerName]);
    return Object.fromEntries(rows.map((row) => [row.name, JSON.parse(row.position) as SinkPosition]));
  }

  async deliveredBlobs(tenant: string, contentType: CollectedType, contentIds: readonly string[]): Promise<Set<string>> {
    if (contentIds.length === 0 || !this.#schema) return new Set();
    const rows = await this.#read<{ content_id: string }>('SELECT content_id FROM delivered_blobs WHERE tenant = $1 AND content_type = $2 AND content_id = ANY($3::text[])', [tenant, contentType, contentIds]);
    return new Set(rows.map((row) => row.content_id));
  }

  async seenRecords(tenant: string, contentType: CollectedType, keys: readonly RecordKey[]): Promise<Set<string>> {
    if (keys.length === 0 || !this.#schema) return new Set();
    const [seconds, ids] = columns(recordKeyPairs(keys));
    // One primary-key probe per key: the (second, Id) pairs are unrolled in the server and drive the join.
    const rows = await this.#read<{ id: string }>(`SELECT r.id FROM unnest($3::bigint[], $4::text[]) AS k (second, id)
      JOIN record_ids r ON r.tenant_code = (SELECT code FROM tenants WHERE tenant = $1) AND r.content_code = $2
        AND r.creation_second = k.second AND r.id = k.id`, [tenant, contentTypeCodes[contentType], seconds, ids]);
    return new Set(rows.map((row) => row.id));
  }

  async #read<T>(text: string, values: unknown[]): Promise<T[]> {
    if (this.#session.closed) throw new Error(`state ${this.location} is closed`);
    // Reads wait for a pool connection here, not in the pool: its timeout is for connecting, and thousands of units
    // starting at once must queue, not fail.
    await this.#readTurn();
    try {
      return (await this.#pool.query(text, values)).rows as T[];
    } catch (error) {
      throw isStatementError(error) ? error : connectionError(error, this.#target);
    } finally {
      this.#readDone();
    }
  }

  #readsRunning = 0;
  readonly #readsWaiting: Array<() => void> = [];

  #readTurn(): Promise<void> {
    if (this.#readsRunning < readPoolSize) {
      this.#readsRunning += 1;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#readsWaiting.push(resolve));
  }

  #readDone(): void {
    const next = this.#readsWaiting.shift();
    if (next) next();
    else this.#readsRunning -= 1;
  }

  // --- commits (the session) ---

  async commit(tenant: string, commit: Commit): Promise<void> {
    const connection = this.#session.writable();
    const unit = commit.contentType === undefined ? undefined : { tenant, contentType: commit.contentType };
    if (unit === undefined) assertPositionsOnly(commit);
    const tenantCode = unit && commit.recordKeys?.length ? await this.#tenantCode(connection, unit) : undefined;
    await this.#session.run(connection, unit, async (client) => {
      await client.query('BEGIN');
      try {
        if (unit) {
          await assertStillHeld(client, unit, this.#session.workerName);
          await this.#applyToContentType(client, tenant, unit.contentType, commit, tenantCode);
        }
        const positions = Object.entries(commit.sinkPositions ?? {});
        if (positions.length > 0) {
          await client.query(`INSERT INTO sink_positions (worker, name, position) SELECT $1, name, position FROM unnest($2::text[], $3::text[]) AS p (name, position)
            ON CONFLICT (worker, name) DO UPDATE SET position = excluded.position`,
          [this.#session.workerName, positions.map(([name]) => name), positions.map(([, position]) => JSON.stringify(position ?? null))]);
        }
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        throw error;
      }
    });
  }

  async #applyToContentType(client: pg.Client, tenant: string, contentType: CollectedType, commit: Commit, tenantCode: number | undefined): Promise<void> {
    const current = (await client.query<CursorRow>('SELECT * FROM cursors WHERE tenant = $1 AND content_type = $2 FOR UPDATE', [tenant, contentType])).rows[0];
    const plan = planCommit(current, tenant, contentType, commit);
    await client.query(upsertCursor, plan.cursor);
    if (plan.blobs.length > 0) {
      await client.query(`INSERT INTO delivered_blobs (tenant, content_type, content_id, content_created_ms)
        SELECT $1, $2, id, created FROM unnest($3::text[], $4::bigint[]) AS b (id, created)
        ON CONFLICT (tenant, content_type, content_id) DO UPDATE SET content_created_ms = excluded.content_created_ms`,
      [tenant, contentType, ...columns(plan.blobs)]);
    }
    if (plan.expired.length > 0) {
      const expired = plan.expired;
      await client.query(`INSERT INTO expired_blobs (tenant, content_type, seq, content_id, content_created, detected_at)
        SELECT $1, $2, seq, id, created, detected FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[]) AS e (seq, id, created, detected)`,
      [tenant, contentType, expired.map((e) => e.seq), expired.map((e) => e.contentId), expired.map((e) => e.contentCreated), expired.map((e) => e.detectedAt)]);
      await client.query('DELETE FROM expired_blobs WHERE tenant = $1 AND content_type = $2 AND seq <= $3', [tenant, contentType, plan.trimExpiredThrough]);
    }
    if (plan.recordKeys.length > 0) {
      // In key order: each index page is visited once. A repeated key (the pipeline sends none) is kept once.
      await client.query(`INSERT INTO record_ids (tenant_code, content_code, creation_second, id)
        SELECT $1, $2, second, id FROM unnest($3::bigint[], $4::text[]) AS k (second, id) ORDER BY 3, 4
        ON CONFLICT DO NOTHING`, [tenantCode, contentTypeCodes[contentType], ...columns(plan.recordKeys)]);
    }
    if (plan.setAside.length > 0) {
      const records = plan.setAside;
      await client.query(`INSERT INTO dead_letters (tenant, content_type, content_id, element_index, reason, at, bytes)
        SELECT $1, $2, id, index, reason, $3, bytes FROM unnest($4::text[], $5::integer[], $6::text[], $7::bytea[]) AS d (id, index, reason, bytes)`,
      [tenant, contentType, commit.at, records.map((r) => r.contentId), records.map((r) => r.index), records.map((r) => r.reason), records.map((r) => r.bytes)]);
    }
    // After the inserts: forgetting applies to this commit's own entries too.
    if (plan.forgetBlobsBeforeMs !== undefined) {
      await client.query('DELETE FROM delivered_blobs WHERE tenant = $1 AND content_type = $2 AND content_created_ms < $3', [tenant, contentType, plan.forgetBlobsBeforeMs]);
    }
    if (plan.forgetRecordsBeforeSecond !== undefined) {
      await client.query(`DELETE FROM record_ids WHERE tenant_code = (SELECT code FROM tenants WHERE tenant = $1) AND content_code = $2
        AND creation_second < $3 AND creation_second <> 0`, [tenant, contentTypeCodes[contentType], plan.forgetRecordsBeforeSecond]);
    }
  }

  /** The tenant's code in record_ids, made (in its own transaction, so a rolled-back commit cannot unmake it) when new. */
  async #tenantCode(connection: SessionConnection, unit: UnitKey): Promise<number> {
    const tenant = unit.tenant;
    const known = this.#tenantCodes.get(tenant);
    if (known !== undefined) return known;
    const code = await this.#session.run(connection, unit, async (client) => {
      await client.query('INSERT INTO tenants (tenant) VALUES ($1) ON CONFLICT (tenant) DO NOTHING', [tenant]);
      return (await client.query<{ code: number }>('SELECT code FROM tenants WHERE tenant = $1', [tenant])).rows[0]!.code;
    });
    this.#tenantCodes.set(tenant, code);
    return code;
  }
}

/** Pairs as two arrays, the form `unnest` unrolls. */
function columns<A, B>(pairs: ReadonlyArray<readonly [A, B]>): [A[], B[]] {
  return [pairs.map((pair) => pair[0]), pairs.map((pair) => pair[1])];
}
