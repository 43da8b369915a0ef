/**
 * What `--state` may be: a directory the connector creates, an empty one, or one that already holds its state.
 * Refused, each in one line naming the path and the fix: `/` and the system's own directories, a path that is a
 * file, a directory the connector may not write, and a non-empty directory holding nothing of the connector's
 * (pointing `--state` at the wrong place must never turn someone's files into state, or let them be touched).
 */
import { constants, accessSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { ConnectorError } from '../../core/errors.ts';
import { isDeadLetterFileName } from './dead-letter.ts';
import { lockFileName } from './directory-lock.ts';
import { makeDirectory } from '../../core/make-directory.ts';
import { isV2FileName } from './migrate-v2.ts';
import { stateDbName } from './schema.ts';

/** Directories of the system itself: never a state directory (their subdirectories may be). */
const systemDirectories = new Set([
  '/', '/bin', '/boot', '/dev', '/etc', '/home', '/lib', '/lib32', '/lib64', '/libx32', '/media', '/mnt', '/opt', '/proc',
  '/root', '/run', '/sbin', '/srv', '/sys', '/tmp', '/usr', '/usr/bin', '/usr/lib', '/usr/local', '/usr/sbin', '/usr/share',
  '/var', '/var/lib', '/var/log', '/var/tmp', '/var/cache', '/var/run',
]);

/** Files that only the connector writes, which make a directory its state directory (this release's and the previous one's). */
function isStateFileName(name: string): boolean {
  return [stateDbName, `${stateDbName}-wal`, `${stateDbName}-shm`, `${stateDbName}-journal`, lockFileName].includes(name) || isDeadLetterFileName(name) || isV2FileName(name);
}

const fix = 'give --state a new or empty directory of its own, e.g. /var/lib/o365';

/** Checks `dir` as a state directory for a run and creates it (0700) when missing. */
export function prepareStateDirectory(dir: string): void {
  const path = resolve(dir);
  const real = existing(path);
  if (systemDirectories.has(real ?? path)) {
    throw new ConnectorError('STATE_UNSAFE', `--state ${dir} is ${real && real !== path ? `${real}, ` : ''}a directory of the system itself, not one for the connector's state`, { fix });
  }
  if (real === undefined) {
    try {
      makeDirectory(path, 0o700);
    } catch (error) {
      throw fileSystemRefusal(error, path, 'cannot be created');
    }
    return;
  }
  if (!statSync(real).isDirectory()) throw new ConnectorError('STATE_NOT_A_DIRECTORY', `--state ${dir} is a file, not a directory`, { fix });
  try {
    accessSync(real, constants.R_OK | constants.W_OK | constants.X_OK);
  } catch (error) {
    throw fileSystemRefusal(error, path, 'is not writable by this user');
  }
  const names = readdirSync(real);
  if (names.length > 0 && !names.some(isStateFileName)) {
    throw new ConnectorError('STATE_FOREIGN_DIRECTORY', `--state ${dir} holds ${names.length} file(s) and none of them is the connector's state (e.g. ${names.slice(0, 3).join(', ')})`, { fix });
  }
}

function existing(path: string): string | undefined {
  try {
    return realpathSync(path);
  } catch {
    return undefined;
  }
}

function fileSystemRefusal(error: unknown, path: string, what: string): ConnectorError {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'EROFS') return new ConnectorError('STATE_READ_ONLY', `--state ${path} is on a read-only file system`, { fix: 'give --state a directory on a writable file system' });
  if (code === 'EACCES' || code === 'EPERM') return new ConnectorError('STATE_NOT_PERMITTED', `--state ${path} ${what}: permission denied`, { fix: `run as a user who owns it, or give --state a directory that user may write (e.g. chown it)` });
  if (code === 'ENOTDIR' || code === 'EEXIST') return new ConnectorError('STATE_NOT_A_DIRECTORY', `--state ${path}: ${dirname(path)} or a parent of it is a file, not a directory`, { fix });
  if (code === 'ENOENT') return new ConnectorError('STATE_UNUSABLE', `--state ${path} ${what}: its file system allows no new directory there: ${code}`, { fix });
  return new ConnectorError('STATE_UNUSABLE', `--state ${path} ${what}: ${(error as Error).message}`, { fix });
}

/**
 * Checks `dir` as the state to report on (`status`, which creates nothing): a file, the database file itself, or (when
 * `--state` or O365_STATE_DIR named it) a path that does not exist is one line naming what `--state` expects.
 * A directory without the connector's state yet reads as nothing collected, as before a first run.
 */
export function checkStateToReport(dir: string, named: boolean): void {
  const path = resolve(dir);
  let stats;
  try {
    stats = statSync(path);
  } catch (error) {
    if (!named || (error as NodeJS.ErrnoException).code !== 'ENOENT') return;
    throw new ConnectorError('STATE_NOT_FOUND', `--state ${dir} does not exist`, { fix: 'give --state the state directory that `run --state` wrote (the one holding state.db), or a postgres:// URL' });
  }
  if (stats.isDirectory()) return;
  if (basename(path) === stateDbName) {
    throw new ConnectorError('STATE_NOT_A_DIRECTORY', `--state ${dir} is the state database itself, and --state expects the directory holding it`, { fix: `use --state ${dirname(dir)}` });
  }
  throw new ConnectorError('STATE_NOT_A_DIRECTORY', `--state ${dir} is a file, and --state expects the state directory that \`run --state\` wrote, the one holding ${stateDbName}`, { fix: 'give --state that directory, or a postgres:// URL' });
}
