/**
 * One connector per state directory: `<dir>/connector.lock`, a lock the operating system releases when its holder
 * dies (see lock-file.ts), held for the whole run. Nothing but lock-file.ts may open it.
 */
import { join } from 'node:path';
import { ConnectorError } from '../../core/errors.ts';
import { takeLockFile } from '../../core/lock-file.ts';

export const lockFileName = 'connector.lock';

export interface DirectoryLock {
  release(): void;
}

export interface DirectoryLockOptions {
  /** How long to keep trying while another process holds the lock (a predecessor that is still exiting). */
  readonly waitMs: number;
  readonly abortSignal?: AbortSignal | undefined;
  /** Called once, when the lock is first found taken and the wait begins (to say so in the log). */
  readonly onWait?: (() => void) | undefined;
}

/** Takes the state directory's lock, retrying for up to `waitMs`; throws STATE_LOCKED when it stays taken. */
export async function lockStateDirectory(dir: string, options: DirectoryLockOptions): Promise<DirectoryLock> {
  const lock = await takeLockFile(join(dir, lockFileName), {
    ...options,
    taken: () => new ConnectorError('STATE_LOCKED', `state directory ${dir} is in use by another running connector`, { fix: 'stop that connector, or give this one its own --state directory' }),
  });
  return { release: () => lock.release() };
}
