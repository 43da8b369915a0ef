/**
 * One connector per state directory, enforced by a lock the operating system releases when its holder dies:
 * `<dir>/connector.lock` is a small SQLite database that the running connector opens with
 * `locking_mode=EXCLUSIVE` and writes once, so its connection keeps an exclusive POSIX lock on the file until it
 * closes or the process ends. The kernel drops that lock while a killed process exits, before its parent reaps
 * it, so a supervisor that restarts at once only waits for the exit itself; and no pid decides anything, so a
 * pid reused after a reboot cannot block a connector. (The owner row holds the pid for a person reading the file
 * after the fact, nothing more.)
 *
 * POSIX locks belong to the process and are dropped when it closes any descriptor of the file: nothing but this
 * module may open `connector.lock` (SQLite itself keeps its own descriptors for that reason). The file is never
 * deleted, since deleting a lock file lets two processes lock two different files of the same name.
 */
import { chmodSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConnectorError } from '../errors.ts';

export const lockFileName = 'connector.lock';

export interface DirectoryLock {
  release(): void;
}

export interface LockOptions {
  /** How long to keep trying while another process holds the lock (a predecessor that is still exiting). */
  readonly waitMs: number;
  readonly abortSignal?: AbortSignal | undefined;
  /** Called once, when the lock is first found taken and the wait begins (to say so in the log). */
  readonly onWait?: (() => void) | undefined;
}

const firstRetryMs = 10;
const longestRetryMs = 200;

/** Takes the state directory's lock, retrying for up to `waitMs`; throws STATE_LOCKED when it stays taken. */
export async function lockStateDirectory(dir: string, options: LockOptions): Promise<DirectoryLock> {
  const path = join(dir, lockFileName);
  const deadline = Date.now() + options.waitMs;
  let retryMs = firstRetryMs;
  for (;;) {
    const lock = tryLock(path);
    if (lock) return lock;
    const left = deadline - Date.now();
    if (retryMs === firstRetryMs && left > 0) options.onWait?.();
    if (left <= 0) {
      throw new ConnectorError('STATE_LOCKED', `state directory ${dir} is in use by another running connector`, { fix: 'stop that connector, or give this one its own --state directory' });
    }
    await sleep(Math.min(retryMs, left), undefined, options.abortSignal ? { signal: options.abortSignal } : {});
    retryMs = Math.min(retryMs * 2, longestRetryMs);
  }
}

function tryLock(path: string): DirectoryLock | undefined {
  // timeout 0: a held lock answers SQLITE_BUSY at once; the waiting happens above, without blocking the event loop.
  const db = new DatabaseSync(path, { timeout: 0 });
  try {
    chmodSync(path, 0o600); // by path: opening a descriptor here would drop a lock this process may hold
    db.exec('PRAGMA locking_mode = EXCLUSIVE');
    db.exec('PRAGMA journal_mode = MEMORY'); // nothing in it is worth a journal file beside it
    db.exec('BEGIN EXCLUSIVE');
    db.exec('CREATE TABLE IF NOT EXISTS owner (pid INTEGER NOT NULL, host TEXT NOT NULL, started_at TEXT NOT NULL)');
    db.exec('DELETE FROM owner');
    db.prepare('INSERT INTO owner (pid, host, started_at) VALUES (?, ?, ?)').run(process.pid, hostname(), new Date().toISOString());
    // In exclusive locking mode the lock taken by this write is kept after COMMIT, until close or exit.
    db.exec('COMMIT');
    return { release: () => db.close() };
  } catch (error) {
    db.close();
    if (isBusy(error)) return undefined;
    throw error;
  }
}

/** SQLITE_BUSY (and its extended codes): another connection holds the lock. */
export function isBusy(error: unknown): boolean {
  return typeof (error as { errcode?: unknown }).errcode === 'number' && ((error as { errcode: number }).errcode & 0xff) === 5;
}
