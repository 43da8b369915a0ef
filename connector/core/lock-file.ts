/**
 * A lock the operating system releases when its holder dies: the lock file is a small SQLite database that the
 * holder opens with `locking_mode=EXCLUSIVE` and writes once, so its connection keeps an exclusive POSIX lock on
 * the file until it closes or the process ends. The kernel drops that lock while a killed process exits, before
 * its parent reaps it, so a supervisor that restarts at once only waits for the exit itself; and no pid decides
 * anything, so a pid reused after a reboot cannot block anyone. (The owner row holds the pid for a person reading
 * the file after the fact, nothing more.) The holder may keep small records of its own in the same database.
 *
 * POSIX locks belong to the process and are dropped when it closes any descriptor of the file: nothing but this
 * module may open a lock file (SQLite itself keeps its own descriptors for that reason). A lock file is never
 * deleted, since deleting a lock file lets two processes lock two different files of the same name.
 */
import { chmodSync } from 'node:fs';
import { hostname } from 'node:os';
import { DatabaseSync } from 'node:sqlite';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ConnectorError } from './errors.ts';

export interface HeldLock {
  /** The lock file's database, locked by this process: for the holder's own records. */
  readonly db: DatabaseSync;
  release(): void;
}

export interface LockOptions {
  /** How long to keep trying while another process holds the lock (a predecessor that is still exiting). */
  readonly waitMs: number;
  readonly abortSignal?: AbortSignal | undefined;
  /** Called once, when the lock is first found taken and the wait begins (to say so in the log). */
  readonly onWait?: (() => void) | undefined;
  /** The error to throw when the lock stays taken for the whole wait. */
  readonly taken: () => ConnectorError;
  /** The lock file's mode (it is created by the first holder). */
  readonly mode?: number;
  /**
   * Whether the holder's own records must survive a crash: a rollback journal beside the lock file (`-journal`,
   * truncated, not deleted, after each transaction). Without, the journal is kept in memory and no file is added.
   */
  readonly durable?: boolean;
}

const firstRetryMs = 10;
const longestRetryMs = 200;

/** Takes the lock of `path`, retrying for up to `waitMs`; throws `taken()` when it stays taken. */
export async function takeLockFile(path: string, options: LockOptions): Promise<HeldLock> {
  const deadline = Date.now() + options.waitMs;
  let retryMs = firstRetryMs;
  for (;;) {
    const lock = tryLock(path, options.mode ?? 0o600, options.durable ?? false);
    if (lock) return lock;
    const left = deadline - Date.now();
    if (retryMs === firstRetryMs && left > 0) options.onWait?.();
    if (left <= 0) throw options.taken();
    await sleep(Math.min(retryMs, left), undefined, options.abortSignal ? { signal: options.abortSignal } : {});
    retryMs = Math.min(retryMs * 2, longestRetryMs);
  }
}

function tryLock(path: string, mode: number, durable: boolean): HeldLock | undefined {
  // timeout 0: a held lock answers SQLITE_BUSY at once; the waiting happens above, without blocking the event loop.
  const db = new DatabaseSync(path, { timeout: 0 });
  try {
    chmodSync(path, mode); // by path: opening a descriptor here would drop a lock this process may hold
    db.exec('PRAGMA locking_mode = EXCLUSIVE');
    db.exec(`PRAGMA journal_mode = ${durable ? 'TRUNCATE' : 'MEMORY'}`);
    db.exec('BEGIN EXCLUSIVE');
    db.exec('CREATE TABLE IF NOT EXISTS owner (pid INTEGER NOT NULL, host TEXT NOT NULL, started_at TEXT NOT NULL)');
    db.exec('DELETE FROM owner');
    db.prepare('INSERT INTO owner (pid, host, started_at) VALUES (?, ?, ?)').run(process.pid, hostname(), new Date().toISOString());
    // In exclusive locking mode the lock taken by this write is kept after COMMIT, until close or exit.
    db.exec('COMMIT');
    return { db, release: () => db.close() };
  } catch (error) {
    db.close();
    if (isBusy(error)) return undefined;
    throw error;
  }
}

/** SQLITE_BUSY (and its extended codes): another connection holds the lock. */
function isBusy(error: unknown): boolean {
  return typeof (error as { errcode?: unknown }).errcode === 'number' && ((error as { errcode: number }).errcode & 0xff) === 5;
}

/**
 * Whether a process holds the lock of `path` now (`status` asks, to say that a connector is running on a state
 * directory). Reads the file without ever taking its lock: a holder's exclusive lock makes the read busy.
 */
export function isLockHeld(path: string): boolean {
  let db: DatabaseSync | undefined;
  try {
    db = new DatabaseSync(path, { readOnly: true, timeout: 0 });
    db.prepare('SELECT count(*) FROM owner').get();
    return false;
  } catch (error) {
    return isBusy(error);
  } finally {
    db?.close();
  }
}
