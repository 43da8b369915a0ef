/**
 * The fleet store: every tenant's state in one PostgreSQL database, shared by many worker processes, each of
 * which collects the units (tenant, content type) it has claimed. The schema is postgres-schema.ts.
 *
 * Each worker holds one session connection for its commits and claims, and a small pool for reads. A claim is a
 * session-level advisory lock on the unit's id, which the server releases when the session ends (a worker that
 * dies or is cut off loses its units at once, without timers of ours). Every commit of a unit checks, inside its
 * transaction, that this session still holds the unit's lock, and is refused (STATE_FENCED) otherwise: a worker
 * that lost its session can never overwrite the state of the worker that took its units over.
 *
 * The session is watched: an error or end of its connection, or a probe (`SELECT 1` every few seconds) that fails
 * or hangs, ends it and fires `onLost` once; every commit then fails until `reconnect` opens a new session.
 * Lookups and inserts of records and blobs are one statement per call, the keys travelling as arrays that
 * `unnest` unrolls in the server: never one query per record.
 */
import { accessSync, constants } from 'node:fs';
import pg from 'pg';
import type { CollectedType } from '../../../contract/content-types.ts';
import { ConnectorError } from '../../core/errors.ts';
import type { SinkPosition } from '../../core/records.ts';
import { assertPositionsOnly, cursorColumns, cursorOf, cursorValueColumns, emptyCursorRow, epochMs, expiredByContentType, nextCursor, type CursorRow, type ExpiredRow } from '../cursor-rows.ts';
import { advisoryNamespace, workerNameNamespace, assertKnownPostgresVersion, currentPostgresSchemaVersion, migratePostgres, postgresSchemaVersion } from './schema.ts';
import { contentTypeCodes } from '../sqlite/schema.ts';
import { postgresClientConfig } from './connection.ts';
import { TenantView } from '../tenant-view.ts';
import { type StateDatabase, type UnitClaims, type UnitHolder } from '../store.ts';
import { creationSecond, expiredKept, unitName, type Commit, type CursorState, type RecordKey, type UnitKey } from '../../core/commit.ts';

export interface OpenPostgresDatabaseOptions {
  /** This worker's name: its sessions are `o365-connector:<name>`, its sink positions are its own. */
  readonly workerName: string;
  readonly abortSignal?: AbortSignal | undefined;
  /** For `status`: no session, no claims, creates nothing; a database without the schema reads as no state. */
  readonly readOnly?: boolean | undefined;
  /** How often the session is probed (default 2 s), and how long a probe may take before the session counts as lost (default 5 s). */
  readonly probeIntervalMs?: number | undefined;
  readonly probeTimeoutMs?: number | undefined;
}

/** application_name of a worker's session: what `workers()` counts and `holders()` reads the worker name from. */
export const sessionNamePrefix = 'o365-connector:';
/** The read pool's connections are not sessions of a worker (a different prefix keeps them out of the count). */
const readerNamePrefix = 'o365-connector-read:';

const connectTimeoutMs = 10_000;
/** Connections that go quiet are found by the kernel too (the probe is the quicker of the two). */
const keepAliveDelayMs = 5_000;
const readPoolSize = 2;

/** BIGINT columns read as numbers (counters and epoch values stay far below 2^53). */
const types = new pg.TypeOverrides();
types.setTypeParser(pg.types.builtins.INT8, (value: string) => Number(value));

interface Target {
  /** postgresql://user@host:port/database, without the password. */
  readonly location: string;
  readonly hostPort: string;
  readonly database: string;
  readonly user: string;
  readonly password: string | undefined;
}

/**
 * Opens the fleet's state database: connects this worker's session (application_name `o365-connector:<name>`),
 * brings the schema up to date (one worker at a time) and opens a small pool for reads. Unreachable server,
 * refused login or missing database: STATE_UNREACHABLE, STATE_DENIED or STATE_NO_DATABASE, naming host:port and
 * the database, never the password.
 */
export async function openPostgresDatabase(url: string, options: OpenPostgresDatabaseOptions): Promise<PostgresStateDatabase> {
  const target = targetOf(url);
  const connection = postgresClientConfig(url);
  const pool = new pg.Pool({
    ...connection, types, max: options.readOnly ? 1 : readPoolSize, keepAlive: true, keepAliveInitialDelayMillis: keepAliveDelayMs,
    connectionTimeoutMillis: connectTimeoutMs, idleTimeoutMillis: 30_000,
    application_name: options.readOnly ? 'o365-connector-status' : `${readerNamePrefix}${options.workerName}`,
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
      return new PostgresStateDatabase(url, target, pool, undefined, { ...options, schema: version !== 0 });
    }
    const session = await openSession(url, target, options);
    try {
      await migratePostgres(session.client, target.location);
    } catch (error) {
      await session.client.end().catch(() => {});
      throw error instanceof ConnectorError ? error : connectionError(error, target);
    }
    return new PostgresStateDatabase(url, target, pool, session, { ...options, schema: true });
  } catch (error) {
    await pool.end().catch(() => {});
    throw error;
  }
}

/** One session connection of this worker: its claims live and die with it. */
interface Session {
  readonly client: pg.Client;
  /** Units this session holds, by unit id. */
  readonly held: Map<number, UnitKey>;
  /** Set once the session is over (its connection failed, ended, or a probe failed). */
  lost: Error | undefined;
  probe: NodeJS.Timeout | undefined;
  /** Commits and claims run one after another on the session: a transaction is never interleaved. */
  queue: Promise<unknown>;
}

async function openSession(url: string, target: Target, options: OpenPostgresDatabaseOptions): Promise<Session> {
  const client = new pg.Client({
    ...postgresClientConfig(url), types, keepAlive: true, keepAliveInitialDelayMillis: keepAliveDelayMs,
    connectionTimeoutMillis: connectTimeoutMs, application_name: `${sessionNamePrefix}${options.workerName}`,
  });
  // Until the database watches it: an error before then is the connect's own rejection.
  client.on('error', () => {});
  await reachable(target, options.abortSignal, () => client.connect(), () => { void client.end().catch(() => {}); });
  try {
    await holdWorkerName(client, target, options.workerName);
  } catch (error) {
    await client.end().catch(() => {});
    throw error;
  }
  return { client, held: new Map(), lost: undefined, probe: undefined, queue: Promise.resolve() };
}

/**
 * The worker's name, held by its session (released by the server when the session ends): two workers of one name
 * would share sink positions and show as one in `status`, so the second is refused, naming the first.
 */
async function holdWorkerName(client: pg.Client, target: Target, workerName: string): Promise<void> {
  let held: boolean;
  try {
    held = (await client.query<{ held: boolean }>('SELECT pg_try_advisory_lock($1, hashtext($2)) AS held', [workerNameNamespace, workerName])).rows[0]!.held;
  } catch (error) {
    throw connectionError(error, target);
  }
  if (held) return;
  const { rows } = await client.query<{ address: string | null; since: Date | null }>(`SELECT host(a.client_addr) AS address, a.backend_start AS since
    FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.classid = $1::oid AND l.objid = hashtext($2)::oid AND l.objsubid = 2 AND l.granted LIMIT 1`, [workerNameNamespace, workerName]).catch(() => ({ rows: [] }));
  const other = rows[0];
  const from = other ? ` (connected${other.address ? ` from ${other.address}` : ''}${other.since ? ` since ${other.since.toISOString()}` : ''})` : '';
  throw new ConnectorError('STATE_WORKER_NAME_TAKEN', `another live worker of ${target.location} is named ${workerName}${from}; two workers of one name would share their sink positions`, {
    fix: `give each worker its own --worker-name (e.g. --worker-name %H-%i in the systemd unit); if that worker is gone, its session ends within seconds, or end it with SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '${sessionNamePrefix}${workerName}'`,
  });
}

interface DatabaseOptions extends OpenPostgresDatabaseOptions {
  /** Whether the schema exists (a read-only open of a database no worker has migrated reads as no state). */
  readonly schema: boolean;
}

/** Every tenant's state in one PostgreSQL database, as one worker sees it. */
export class PostgresStateDatabase implements StateDatabase {
  readonly location: string;
  readonly claims: UnitClaims;
  readonly #url: string;
  readonly #target: Target;
  readonly #pool: pg.Pool;
  readonly #options: DatabaseOptions;
  #session: Session | undefined;
  readonly #lostListeners: Array<(reason: Error) => void> = [];
  readonly #views = new Map<string, TenantView>();
  /** Unit ids and tenant codes never change once made: looked up once. */
  readonly #unitIds = new Map<string, number>();
  readonly #tenantCodes = new Map<string, number>();
  #closed = false;

  constructor(url: string, target: Target, pool: pg.Pool, session: Session | undefined, options: DatabaseOptions) {
    this.location = target.location;
    this.#url = url;
    this.#target = target;
    this.#pool = pool;
    this.#options = options;
    this.#session = session;
    if (session) this.#watch(session);
    this.claims = {
      tryClaim: (unit) => this.#tryClaim(unit),
      tryClaimSome: (units, max) => this.#tryClaimSome(units, max),
      release: (unit) => this.#release(unit),
      workers: () => this.#workers(),
      holders: () => this.#holders(),
      onLost: (listener) => { this.#lostListeners.push(listener); },
      reconnect: () => this.#reconnect(),
    };
  }

  tenant(tenantId: string): TenantView {
    let view = this.#views.get(tenantId);
    if (!view) this.#views.set(tenantId, view = new TenantView(this, tenantId));
    return view;
  }

  async tenants(): Promise<string[]> {
    if (!this.#options.schema) return [];
    return (await this.#read<{ tenant: string }>('SELECT tenant FROM cursors GROUP BY tenant ORDER BY tenant COLLATE "C"')).map((row) => row.tenant);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const session = this.#session;
    if (session) {
      clearInterval(session.probe);
      session.lost ??= new Error('the state database was closed');
      // After whatever runs on it: ending the session gives its claims back.
      await session.queue.catch(() => {});
      await session.client.end().catch(() => {});
    }
    await this.#pool.end().catch(() => {});
  }

  // --- reads (the pool) ---

  /** @internal the reads and commits of the tenant views */
  async cursorsOf(tenant: string): Promise<Map<CollectedType, CursorState>> {
    if (!this.#options.schema) return new Map();
    const [cursorRows, expiredRows] = await Promise.all([
      this.#read<CursorRow>('SELECT * FROM cursors WHERE tenant = $1 ORDER BY content_type COLLATE "C"', [tenant]),
      this.#read<ExpiredRow>('SELECT content_type, content_id, content_created, detected_at FROM expired_blobs WHERE tenant = $1 ORDER BY content_type COLLATE "C", seq', [tenant]),
    ]);
    const expired = expiredByContentType(expiredRows);
    const cursors = new Map<CollectedType, CursorState>();
    for (const row of cursorRows) {
      cursors.set(row.content_type, cursorOf(row, expired.get(row.content_type) ?? [], this.location, (r) =>
        `set it to an ISO time (UPDATE cursors SET checkpoint = '2026-11-25T00:00:00.000Z' WHERE tenant = '${r.tenant}' AND content_type = '${r.content_type}'); records after that time are delivered again only if not remembered`));
    }
    return cursors;
  }

  async sinkPositions(): Promise<Record<string, SinkPosition>> {
    if (!this.#options.schema) return {};
    const positions: Record<string, SinkPosition> = {};
    for (const row of await this.#read<{ name: string; position: string }>('SELECT name, position FROM sink_positions WHERE worker = $1 ORDER BY name COLLATE "C"', [this.#options.workerName])) {
      positions[row.name] = JSON.parse(row.position) as SinkPosition;
    }
    return positions;
  }

  async deliveredBlobs(tenant: string, contentType: CollectedType, contentIds: readonly string[]): Promise<Set<string>> {
    if (contentIds.length === 0 || !this.#options.schema) return new Set();
    const rows = await this.#read<{ content_id: string }>('SELECT content_id FROM delivered_blobs WHERE tenant = $1 AND content_type = $2 AND content_id = ANY($3::text[])', [tenant, contentType, contentIds]);
    return new Set(rows.map((row) => row.content_id));
  }

  async seenRecords(tenant: string, contentType: CollectedType, keys: readonly RecordKey[]): Promise<Set<string>> {
    if (keys.length === 0 || !this.#options.schema) return new Set();
    const [seconds, ids] = keyArrays(keys);
    // One primary-key probe per key: the (second, Id) pairs are unrolled in the server and drive the join.
    const rows = await this.#read<{ id: string }>(`SELECT r.id FROM unnest($3::bigint[], $4::text[]) AS k (second, id)
      JOIN record_ids r ON r.tenant_code = (SELECT code FROM tenants WHERE tenant = $1) AND r.content_code = $2
        AND r.creation_second = k.second AND r.id = k.id`, [tenant, contentTypeCodes[contentType], seconds, ids]);
    return new Set(rows.map((row) => row.id));
  }

  async #read<T>(text: string, values: unknown[] = []): Promise<T[]> {
    if (this.#closed) throw new Error(`state ${this.location} is closed`);
    // Reads wait for a pool connection here, not in the pool: its timeout is for connecting, and thousands of units
    // starting at once must queue, not fail.
    await this.#readTurn();
    try {
      return (await this.#pool.query(text, values)).rows as T[];
    } catch (error) {
      throw error instanceof pg.DatabaseError && !isConnectionCode(error.code) ? error : connectionError(error, this.#target);
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
    const session = this.#writable();
    const unit = commit.contentType === undefined ? undefined : { tenant, contentType: commit.contentType };
    if (unit === undefined) assertPositionsOnly(commit);
    const tenantCode = unit && commit.recordKeys?.length ? await this.#tenantCode(session, unit) : undefined;
    await this.#onSession(session, unit, async (client) => {
      await client.query('BEGIN');
      try {
        if (unit) {
          const { rows } = await client.query<{ held: boolean }>(`SELECT EXISTS (SELECT 1 FROM units u JOIN pg_locks l ON l.objid = u.id::oid
            WHERE u.tenant = $2 AND u.content_type = $3 AND l.locktype = 'advisory' AND l.classid = $1::oid AND l.objsubid = 2
              AND l.pid = pg_backend_pid() AND l.granted) AS held`, [advisoryNamespace, unit.tenant, unit.contentType]);
          if (!rows[0]!.held) throw fenced(unit, this.#options.workerName, 'another worker may hold it now');
          await this.#applyToContentType(client, tenant, unit.contentType, commit, tenantCode);
        }
        const positions = Object.entries(commit.sinkPositions ?? {});
        if (positions.length > 0) {
          await client.query(`INSERT INTO sink_positions (worker, name, position) SELECT $1, name, position FROM unnest($2::text[], $3::text[]) AS p (name, position)
            ON CONFLICT (worker, name) DO UPDATE SET position = excluded.position`,
          [this.#options.workerName, positions.map(([name]) => name), positions.map(([, position]) => JSON.stringify(position ?? null))]);
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
    const next = nextCursor(current ?? emptyCursorRow(tenant, contentType), commit);
    await client.query(`INSERT INTO cursors (${cursorColumns.join(', ')}) VALUES (${cursorColumns.map((_, i) => `$${i + 1}`).join(', ')})
      ON CONFLICT (tenant, content_type) DO UPDATE SET ${cursorValueColumns.map((column) => `${column} = excluded.${column}`).join(', ')}`,
    cursorColumns.map((column) => next[column]));
    if (commit.blobs?.length) {
      // One row per blob (a repeated one keeps its last time, as SQLite's upsert does): ON CONFLICT may not meet a row twice.
      const blobs = new Map(commit.blobs.map((blob) => [blob.contentId, epochMs(blob.contentCreated, 'blobs[].contentCreated')]));
      await client.query(`INSERT INTO delivered_blobs (tenant, content_type, content_id, content_created_ms)
        SELECT $1, $2, id, created FROM unnest($3::text[], $4::bigint[]) AS b (id, created)
        ON CONFLICT (tenant, content_type, content_id) DO UPDATE SET content_created_ms = excluded.content_created_ms`,
      [tenant, contentType, [...blobs.keys()], [...blobs.values()]]);
    }
    if (commit.expired?.length) {
      const before = Number(current?.expired_count ?? 0);
      const expired = commit.expired;
      await client.query(`INSERT INTO expired_blobs (tenant, content_type, seq, content_id, content_created, detected_at)
        SELECT $1, $2, seq, id, created, detected FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[]) AS e (seq, id, created, detected)`,
      [tenant, contentType, expired.map((_, i) => before + i + 1), expired.map((e) => e.contentId), expired.map((e) => e.contentCreated), expired.map((e) => e.detectedAt)]);
      await client.query('DELETE FROM expired_blobs WHERE tenant = $1 AND content_type = $2 AND seq <= $3', [tenant, contentType, next.expired_count - expiredKept]);
    }
    if (commit.recordKeys?.length) {
      const [seconds, ids] = keyArrays(commit.recordKeys);
      // In key order: each index page is visited once. A repeated key (the pipeline sends none) is kept once.
      await client.query(`INSERT INTO record_ids (tenant_code, content_code, creation_second, id)
        SELECT $1, $2, second, id FROM unnest($3::bigint[], $4::text[]) AS k (second, id) ORDER BY 3, 4
        ON CONFLICT DO NOTHING`, [tenantCode, contentTypeCodes[contentType], seconds, ids]);
    }
    if (commit.setAside?.length) {
      const records = commit.setAside;
      await client.query(`INSERT INTO dead_letters (tenant, content_type, content_id, element_index, reason, at, bytes)
        SELECT $1, $2, id, index, reason, $3, bytes FROM unnest($4::text[], $5::integer[], $6::text[], $7::bytea[]) AS d (id, index, reason, bytes)`,
      [tenant, contentType, commit.at, records.map((r) => r.contentId), records.map((r) => r.index), records.map((r) => r.reason), records.map((r) => r.bytes)]);
    }
    // After the inserts: forgetting applies to this commit's own entries too.
    if (commit.forgetBlobsBefore !== undefined) {
      await client.query('DELETE FROM delivered_blobs WHERE tenant = $1 AND content_type = $2 AND content_created_ms < $3', [tenant, contentType, epochMs(commit.forgetBlobsBefore, 'forgetBlobsBefore')]);
    }
    if (commit.forgetRecordsCreatedBefore !== undefined) {
      const before = Math.floor(epochMs(commit.forgetRecordsCreatedBefore, 'forgetRecordsCreatedBefore') / 1000);
      // Second 0 (no readable CreationTime) has no age: such records are kept.
      await client.query(`DELETE FROM record_ids WHERE tenant_code = (SELECT code FROM tenants WHERE tenant = $1) AND content_code = $2
        AND creation_second < $3 AND creation_second <> 0`, [tenant, contentTypeCodes[contentType], before]);
    }
  }

  /** The tenant's code in record_ids, made (in its own transaction, so a rolled-back commit cannot unmake it) when new. */
  async #tenantCode(session: Session, unit: UnitKey): Promise<number> {
    const tenant = unit.tenant;
    const known = this.#tenantCodes.get(tenant);
    if (known !== undefined) return known;
    const code = await this.#onSession(session, unit, async (client) => {
      await client.query('INSERT INTO tenants (tenant) VALUES ($1) ON CONFLICT (tenant) DO NOTHING', [tenant]);
      return (await client.query<{ code: number }>('SELECT code FROM tenants WHERE tenant = $1', [tenant])).rows[0]!.code;
    });
    this.#tenantCodes.set(tenant, code);
    return code;
  }

  // --- claims (the session) ---

  async #tryClaim(unit: UnitKey): Promise<boolean> {
    const session = this.#writable();
    const id = await this.#unitId(session, unit);
    return this.#onSession(session, undefined, async (client) => {
      if (session.held.has(id)) return true; // a second lock would stack: one release would not give it back
      const { rows } = await client.query<{ claimed: boolean }>('SELECT pg_try_advisory_lock($1, $2) AS claimed', [advisoryNamespace, id]);
      if (!rows[0]!.claimed) return false;
      session.held.set(id, { tenant: unit.tenant, contentType: unit.contentType });
      await client.query('UPDATE units SET claimed_by = $2, claimed_pid = pg_backend_pid(), claimed_at = now() WHERE id = $1', [id, this.#options.workerName]);
      return true;
    });
  }

  async #tryClaimSome(units: readonly UnitKey[], max: number): Promise<UnitKey[]> {
    const session = this.#writable();
    if (units.length === 0 || max <= 0) return [];
    const ids = await this.#unitIdsOf(session, units);
    return this.#onSession(session, undefined, async (client) => {
      const mine = units.filter((_, i) => session.held.has(ids[i]!)).slice(0, max);
      const free = ids.filter((id) => !session.held.has(id));
      const wanted = max - mine.length;
      if (wanted <= 0 || free.length === 0) return mine;
      // The filter runs row by row as the limit pulls them: no lock is taken beyond the `wanted`th success.
      let rows: Array<{ id: number }>;
      try {
        rows = (await client.query<{ id: number }>('SELECT c.id FROM unnest($2::integer[]) AS c (id) WHERE pg_try_advisory_lock($1, c.id) LIMIT $3', [advisoryNamespace, free, wanted])).rows;
      } catch (error) {
        if (!(error instanceof pg.DatabaseError) || isConnectionCode(error.code)) throw error;
        // Session locks taken before the statement failed stay with the session: give back those nobody knows of.
        await this.#releaseUnknownLocks(client, session);
        throw error.code === '53200' ? locksExhausted(this.#options.workerName, session.held.size, error) : error;
      }
      const claimed = new Set(rows.map((row) => Number(row.id)));
      if (claimed.size > 0) {
        await client.query('UPDATE units SET claimed_by = $2, claimed_pid = pg_backend_pid(), claimed_at = now() WHERE id = ANY($1::integer[])', [[...claimed], this.#options.workerName]);
      }
      const taken: UnitKey[] = [];
      units.forEach((unit, i) => {
        if (!claimed.has(ids[i]!)) return;
        session.held.set(ids[i]!, { tenant: unit.tenant, contentType: unit.contentType });
        taken.push(unit);
      });
      return [...mine, ...taken];
    });
  }

  async #releaseUnknownLocks(client: pg.Client, session: Session): Promise<void> {
    const { rows } = await client.query<{ id: number }>(`SELECT objid::bigint AS id FROM pg_locks
      WHERE locktype = 'advisory' AND classid = $1::oid AND objsubid = 2 AND pid = pg_backend_pid() AND granted`, [advisoryNamespace]);
    for (const { id } of rows) if (!session.held.has(Number(id))) await client.query('SELECT pg_advisory_unlock($1, $2)', [advisoryNamespace, Number(id)]);
  }

  /** The ids of `units`, in their order: made in one statement for those new to the database. */
  async #unitIdsOf(session: Session, units: readonly UnitKey[]): Promise<number[]> {
    const missing = units.filter((unit) => !this.#unitIds.has(unitName(unit)));
    if (missing.length > 0) {
      const tenants = missing.map((unit) => unit.tenant);
      const types = missing.map((unit) => unit.contentType);
      const rows = await this.#onSession(session, undefined, async (client) => {
        await client.query(`INSERT INTO units (tenant, content_type) SELECT * FROM unnest($1::text[], $2::text[])
          ON CONFLICT (tenant, content_type) DO NOTHING`, [tenants, types]);
        return (await client.query<{ id: number; tenant: string; content_type: CollectedType }>(`SELECT u.id, u.tenant, u.content_type FROM units u
          JOIN unnest($1::text[], $2::text[]) AS k (tenant, content_type) ON u.tenant = k.tenant AND u.content_type = k.content_type`, [tenants, types])).rows;
      });
      for (const row of rows) this.#unitIds.set(unitName({ tenant: row.tenant, contentType: row.content_type }), Number(row.id));
    }
    return units.map((unit) => this.#unitIds.get(unitName(unit))!);
  }

  async #release(unit: UnitKey): Promise<void> {
    const session = this.#session;
    const id = this.#unitIds.get(unitName(unit));
    if (!session || id === undefined || !session.held.has(id)) return;
    session.held.delete(id);
    if (session.lost) return; // the server gave it back with the session
    await this.#onSession(session, undefined, (client) => client.query('SELECT pg_advisory_unlock($1, $2)', [advisoryNamespace, id]));
  }

  async #unitId(session: Session, unit: UnitKey): Promise<number> {
    const name = unitName(unit);
    const known = this.#unitIds.get(name);
    if (known !== undefined) return known;
    const id = await this.#onSession(session, undefined, async (client) => {
      await client.query('INSERT INTO units (tenant, content_type) VALUES ($1, $2) ON CONFLICT (tenant, content_type) DO NOTHING', [unit.tenant, unit.contentType]);
      return (await client.query<{ id: number }>('SELECT id FROM units WHERE tenant = $1 AND content_type = $2', [unit.tenant, unit.contentType])).rows[0]!.id;
    });
    this.#unitIds.set(name, id);
    return id;
  }

  async #workers(): Promise<number> {
    const rows = await this.#read<{ workers: number }>(`SELECT count(*)::integer AS workers FROM pg_stat_activity
      WHERE datname = current_database() AND starts_with(application_name, $1)`, [sessionNamePrefix]);
    return rows[0]!.workers;
  }

  async #holders(): Promise<UnitHolder[]> {
    if (!this.#options.schema) return [];
    const rows = await this.#read<{ tenant: string; content_type: CollectedType; worker: string; since: Date | null }>(`
      SELECT u.tenant, u.content_type,
        CASE WHEN u.claimed_pid = l.pid THEN u.claimed_by ELSE substr(a.application_name, $2) END AS worker,
        CASE WHEN u.claimed_pid = l.pid THEN u.claimed_at ELSE a.backend_start END AS since
      FROM pg_locks l JOIN units u ON l.objid = u.id::oid JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.classid = $1::oid AND l.objsubid = 2 AND l.granted AND a.datname = current_database()
      ORDER BY u.tenant COLLATE "C", u.content_type COLLATE "C"`, [advisoryNamespace, sessionNamePrefix.length + 1]);
    return rows.map((row) => ({ unit: { tenant: row.tenant, contentType: row.content_type }, worker: row.worker, since: row.since?.toISOString() }));
  }

  async #reconnect(): Promise<void> {
    if (this.#closed) throw new Error(`state ${this.location} is closed`);
    if (this.#options.readOnly || (this.#session && !this.#session.lost)) return;
    const session = await openSession(this.#url, this.#target, this.#options);
    this.#session = session;
    this.#watch(session);
  }

  // --- the session's life ---

  /** The session for a commit or a claim; refused once it is lost (until reconnect) or when read-only. */
  #writable(): Session {
    if (this.#closed) throw new Error(`state ${this.location} is closed`);
    const session = this.#session;
    if (!session) throw new Error(`state ${this.location} is open read-only`);
    return session;
  }

  /**
   * Runs `action` on the session once the actions before it are done. A session found lost, or lost during the
   * action (its connection failed), refuses: the unit's commit is STATE_FENCED, anything else STATE_SESSION_LOST.
   */
  #onSession<T>(session: Session, unit: UnitKey | undefined, action: (client: pg.Client) => Promise<T>): Promise<T> {
    const run = session.queue.catch(() => {}).then(async () => {
      if (session.lost) throw sessionLost(session.lost, unit, this.#options.workerName);
      try {
        return await action(session.client);
      } catch (error) {
        // The commit's own refusals (a bad commit, the fence) leave the session as it was.
        if (error instanceof ConnectorError || error instanceof TypeError || error instanceof RangeError) throw error;
        if (session.lost || !(error instanceof pg.DatabaseError) || isConnectionCode(error.code)) {
          this.#lose(session, error as Error);
          throw sessionLost(session.lost!, unit, this.#options.workerName);
        }
        throw error;
      }
    });
    session.queue = run;
    return run;
  }

  #watch(session: Session): void {
    const client = session.client;
    client.removeAllListeners('error');
    client.on('error', (error) => this.#lose(session, error));
    client.on('end', () => this.#lose(session, new Error('the connection to the state database ended')));
    const interval = this.#options.probeIntervalMs ?? 2_000;
    const timeout = this.#options.probeTimeoutMs ?? 5_000;
    let probing = false;
    session.probe = setInterval(() => {
      if (probing || session.lost) return;
      probing = true;
      void this.#onSession(session, undefined, (c) => withTimeout(c.query('SELECT 1'), timeout, `the state database did not answer a probe within ${timeout} ms`))
        .catch((error: unknown) => this.#lose(session, error as Error))
        .finally(() => { probing = false; });
    }, interval);
    session.probe.unref();
  }

  /** Ends the session for good (its claims are gone with it) and tells the listeners, once. */
  #lose(session: Session, reason: Error): void {
    if (session.lost) return;
    session.lost = reason;
    clearInterval(session.probe);
    session.held.clear();
    session.client.removeAllListeners('error');
    session.client.on('error', () => {});
    void session.client.end().catch(() => {});
    if (this.#closed || session !== this.#session) return;
    const error = new ConnectorError('STATE_SESSION_LOST', `the state database session of worker ${this.#options.workerName} ended: ${oneLine(reason.message)}`, {
      fix: 'its units stop; they are claimed again after a reconnect (another worker may have taken them)', cause: reason, retryable: true,
    });
    for (const listener of this.#lostListeners) {
      try {
        listener(error);
      } catch {
        // A listener's failure is its own: the others are told all the same.
      }
    }
  }
}

function keyArrays(keys: readonly RecordKey[]): [number[], string[]] {
  return [keys.map((key) => creationSecond(key.creationTime)), keys.map((key) => key.id)];
}

function fenced(unit: UnitKey, worker: string, why: string): ConnectorError {
  return new ConnectorError('STATE_FENCED', `${unitName(unit)} is no longer held by this worker (${worker}): ${why}; the commit was not applied`, {
    fix: 'none needed: the unit stops here and its new holder collects it from the last commit (claim it again to go on)',
  });
}

function sessionLost(reason: Error, unit: UnitKey | undefined, worker: string): ConnectorError {
  if (unit) return fenced(unit, worker, `its database session ended (${oneLine(reason.message)})`);
  return new ConnectorError('STATE_SESSION_LOST', `the state database session of worker ${worker} ended: ${oneLine(reason.message)}`, {
    fix: 'reconnect, then claim the units again', cause: reason, retryable: true,
  });
}

/** SQLSTATE classes of a connection that is gone: 08 (connection exception), 57 (operator intervention, e.g. terminated). */
function isConnectionCode(code: string | undefined): boolean {
  return code !== undefined && /^(08|57)/.test(code);
}

/** Runs a connect, mapping its failures (and an abort) to one line naming the server and the database. */
async function reachable<T>(target: Target, abortSignal: AbortSignal | undefined, connect: () => Promise<T>, onAbort?: () => void): Promise<T> {
  abortSignal?.throwIfAborted();
  let stop: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    if (!abortSignal) return;
    const listener = () => { onAbort?.(); reject(abortSignal.reason as Error); };
    abortSignal.addEventListener('abort', listener, { once: true });
    stop = () => abortSignal.removeEventListener('abort', listener);
  });
  try {
    return await Promise.race([connect(), aborted]);
  } catch (error) {
    if (abortSignal?.aborted) throw abortSignal.reason;
    throw error instanceof ConnectorError ? error : connectionError(error, target);
  } finally {
    stop?.();
  }
}

/** A failure to reach or use the server as one line: what failed, where (host:port/database), and the fix. */
function connectionError(error: unknown, target: Target): ConnectorError {
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

function targetOf(url: string): Target {
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

/** PostgreSQL's shared lock table is full: every held unit is one advisory lock in it. */
function locksExhausted(worker: string, held: number, cause: unknown): ConnectorError {
  return new ConnectorError('STATE_LOCKS_EXHAUSTED', `PostgreSQL has no room for more advisory locks (worker ${worker} holds ${held} units; every unit held by any worker takes one slot of the server's lock table)`, {
    fix: 'raise max_locks_per_transaction on the server (the table holds about max_locks_per_transaction × max_connections locks; e.g. 256 for 20,000 units with 100 connections) and restart it',
    cause, retryable: true,
  });
}

/** A message with the password cut out, whatever echoed it. */
function scrub(message: string, target: Target): string {
  return target.password ? message.split(target.password).join('[redacted]') : message;
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

async function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(message)), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}
