/**
 * A worker's session with the fleet database: one connection (application_name `o365-connector:<name>`) that
 * holds the worker's name and its claims, and on which its commits and claims run one after another. The server
 * releases everything the session holds when its connection ends, so a worker that dies or is cut off loses its
 * units at once, without timers of ours.
 *
 * The session is watched: an error or end of its connection, or a probe (`SELECT 1` every few seconds) that fails
 * or hangs, ends it and fires the `onLost` listeners once; every commit and claim then fails until `reconnect`
 * opens a new connection, holding nothing.
 */
import pg from 'pg';
import { ConnectorError } from '../../core/errors.ts';
import { unitName, type UnitKey } from '../../core/commit.ts';
import { connectionConfig, connectionError, isStatementError, oneLine, reachable, type Target } from './connection.ts';
import { workerNameNamespace } from './schema.ts';

/** application_name of a worker's session: what `workers()` counts and `holders()` reads the worker name from. */
export const sessionNamePrefix = 'o365-connector:';

export interface SessionOptions {
  /** This worker's name: its sessions are `o365-connector:<name>`, its sink positions are its own. */
  readonly workerName: string;
  readonly abortSignal?: AbortSignal | undefined;
  /** How often the session is probed (default 2 s), and how long a probe may take before the session counts as lost (default 5 s). */
  readonly probeIntervalMs?: number | undefined;
  readonly probeTimeoutMs?: number | undefined;
}

/** One connection of the session: its claims live and die with it. */
export interface SessionConnection {
  readonly client: pg.Client;
  /** Units this connection holds, by unit id. */
  readonly held: Map<number, UnitKey>;
  /** Set once the connection is over (it failed, ended, or a probe failed). */
  lost: Error | undefined;
  probe: NodeJS.Timeout | undefined;
  /** Commits and claims run one after another: a transaction is never interleaved. */
  queue: Promise<unknown>;
}

export class PostgresSession {
  readonly workerName: string;
  readonly #url: string;
  readonly #target: Target;
  readonly #options: SessionOptions;
  /** The connection now, lost or not; undefined when read-only. */
  current: SessionConnection | undefined;
  closed = false;
  readonly #lostListeners: Array<(reason: Error) => void> = [];

  /** Connects the session and holds the worker's name; `prepare` (the migration) runs on it before it is watched. */
  static async open(url: string, target: Target, options: SessionOptions, prepare: (client: pg.Client) => Promise<void>): Promise<PostgresSession> {
    return new PostgresSession(url, target, options, await connect(url, target, options, prepare));
  }

  /** Without a connection: a read-only database's session, which refuses commits and claims. */
  constructor(url: string, target: Target, options: SessionOptions, connection: SessionConnection | undefined) {
    this.workerName = options.workerName;
    this.#url = url;
    this.#target = target;
    this.#options = options;
    this.current = connection;
    if (connection) this.#watch(connection);
  }

  onLost(listener: (reason: Error) => void): void {
    this.#lostListeners.push(listener);
  }

  /** The connection for a commit or a claim; refused once closed or when read-only. */
  writable(): SessionConnection {
    if (this.closed) throw new Error(`state ${this.#target.location} is closed`);
    const connection = this.current;
    if (!connection) throw new Error(`state ${this.#target.location} is open read-only`);
    return connection;
  }

  /**
   * Runs `action` on the connection once the actions before it are done. A connection found lost, or lost during
   * the action (it failed), refuses: the unit's commit is STATE_FENCED, anything else STATE_SESSION_LOST.
   */
  run<T>(connection: SessionConnection, unit: UnitKey | undefined, action: (client: pg.Client) => Promise<T>): Promise<T> {
    const run = connection.queue.catch(() => {}).then(async () => {
      if (connection.lost) throw sessionLost(connection.lost, unit, this.workerName);
      try {
        return await action(connection.client);
      } catch (error) {
        // The commit's own refusals (a bad commit, the fence) leave the session as it was.
        if (error instanceof ConnectorError || error instanceof TypeError || error instanceof RangeError) throw error;
        if (connection.lost || !isStatementError(error)) {
          this.#lose(connection, error as Error);
          throw sessionLost(connection.lost!, unit, this.workerName);
        }
        throw error;
      }
    });
    connection.queue = run;
    return run;
  }

  /** A new connection after a loss; rejects while the database cannot be reached. */
  async reconnect(): Promise<void> {
    if (this.closed) throw new Error(`state ${this.#target.location} is closed`);
    if (!this.current || !this.current.lost) return;
    const connection = await connect(this.#url, this.#target, this.#options);
    this.current = connection;
    this.#watch(connection);
  }

  /** Ends the session after whatever runs on it: ending it gives its claims back. */
  async close(): Promise<void> {
    this.closed = true;
    const connection = this.current;
    if (!connection) return;
    clearInterval(connection.probe);
    connection.lost ??= new Error('the state database was closed');
    await connection.queue.catch(() => {});
    await connection.client.end().catch(() => {});
  }

  #watch(connection: SessionConnection): void {
    const client = connection.client;
    client.removeAllListeners('error');
    client.on('error', (error) => this.#lose(connection, error));
    client.on('end', () => this.#lose(connection, new Error('the connection to the state database ended')));
    const interval = this.#options.probeIntervalMs ?? 2_000;
    const timeout = this.#options.probeTimeoutMs ?? 5_000;
    let probing = false;
    connection.probe = setInterval(() => {
      if (probing || connection.lost) return;
      probing = true;
      void this.run(connection, undefined, (c) => answerWithin(c.query('SELECT 1'), timeout, `the state database did not answer a probe within ${timeout} ms`))
        .catch((error: unknown) => this.#lose(connection, error as Error))
        .finally(() => { probing = false; });
    }, interval);
    connection.probe.unref();
  }

  /** Ends the connection for good (its claims are gone with it) and tells the listeners, once. */
  #lose(connection: SessionConnection, reason: Error): void {
    if (connection.lost) return;
    connection.lost = reason;
    clearInterval(connection.probe);
    connection.held.clear();
    connection.client.removeAllListeners('error');
    connection.client.on('error', () => {});
    void connection.client.end().catch(() => {});
    if (this.closed || connection !== this.current) return;
    const error = new ConnectorError('STATE_SESSION_LOST', `the state database session of worker ${this.workerName} ended: ${oneLine(reason.message)}`, {
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

async function connect(url: string, target: Target, options: SessionOptions, prepare?: (client: pg.Client) => Promise<void>): Promise<SessionConnection> {
  const client = new pg.Client(connectionConfig(url, `${sessionNamePrefix}${options.workerName}`));
  // Until the session watches it: an error before then is the connect's own rejection.
  client.on('error', () => {});
  try {
    await reachable(target, options.abortSignal, async () => {
      await client.connect();
      await holdWorkerName(client, target, options.workerName);
    }, () => { void client.end().catch(() => {}); });
    await prepare?.(client).catch((error: unknown) => { throw error instanceof ConnectorError ? error : connectionError(error, target); });
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
  const { rows: [lock] } = await client.query<{ held: boolean }>('SELECT pg_try_advisory_lock($1, hashtext($2)) AS held', [workerNameNamespace, workerName]);
  if (lock!.held) return;
  const { rows } = await client.query<{ address: string | null; since: Date | null }>(`SELECT host(a.client_addr) AS address, a.backend_start AS since
    FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.classid = $1::oid AND l.objid = hashtext($2)::oid AND l.objsubid = 2 AND l.granted LIMIT 1`, [workerNameNamespace, workerName]).catch(() => ({ rows: [] }));
  const other = rows[0];
  const from = other ? ` (connected${other.address ? ` from ${other.address}` : ''}${other.since ? ` since ${other.since.toISOString()}` : ''})` : '';
  throw new ConnectorError('STATE_WORKER_NAME_TAKEN', `another live worker of ${target.location} is named ${workerName}${from}; two workers of one name would share their sink positions`, {
    fix: `give each worker its own --worker-name (e.g. --worker-name %H-%i in the systemd unit); if that worker is gone, its session ends within seconds, or end it with SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = '${sessionNamePrefix}${workerName}'`,
  });
}

/** The unit's commit is refused: this worker no longer holds it. */
export function fenced(unit: UnitKey, worker: string, why: string): ConnectorError {
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

/** pg's query takes no AbortSignal: the probe races a timer instead, and the timer goes with the answer. */
async function answerWithin<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(message)), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}
