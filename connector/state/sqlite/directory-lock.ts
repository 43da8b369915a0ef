/**
 * One connector per state directory: `<dir>/connector.lock`, a lock the operating system releases when its holder
 * dies (see lock-file.ts), held for the whole run. Nothing but lock-file.ts may open it.
 */
import { join } from 'node:path';
import { ConnectorError } from '../../core/errors.ts';
import { takeLockFile, type HeldLock, type LockOptions } from '../../core/lock-file.ts';

export const lockFileName = 'connector.lock';

/** Takes the state directory's lock, retrying for up to `waitMs`; throws STATE_LOCKED when it stays taken. */
export function lockStateDirectory(dir: string, options: Pick<LockOptions, 'waitMs' | 'abortSignal' | 'onWait'>): Promise<HeldLock> {
  return takeLockFile(join(dir, lockFileName), {
    ...options,
    taken: () => new ConnectorError('STATE_LOCKED', `state directory ${dir} is in use by another running connector`, { fix: 'stop that connector, or give this one its own --state directory' }),
  });
}
