/**
 * Reading a small file a setting names (an outputs file, a CA bundle, a certificate, a token, a password) without
 * trusting what sits at its path: only a regular file is read (a symlink to one is fine), and at most `maxBytes` of
 * it. It is opened without blocking, because opening a FIFO for reading waits for a writer, and a thread stuck in that
 * open holds the process even at exit (a second signal's too). Each caller says in its own words what the file was for.
 */
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';

export class SmallFileError extends Error {
  /** The errno code of a failed open or read (ENOENT, EACCES, …), `NOT_A_FILE` or `TOO_LARGE`. */
  readonly code: string;
  /** NOT_A_FILE: what is there instead ("a FIFO (named pipe)"). */
  readonly kind: string | undefined;
  constructor(code: string, message: string, kind?: string) {
    super(message);
    this.code = code;
    this.kind = kind;
  }
}

/** Far above a PEM bundle, a token or a password (kilobytes; a system's CA bundle is about 200 KB): a bound, not a knob. */
export const maxSettingFileBytes = 1024 * 1024;

/** What sits at a path instead of a regular file, in words. */
function kindOf(stats: Stats): string {
  return stats.isDirectory() ? 'a directory' : stats.isFIFO() ? 'a FIFO (named pipe)' : stats.isSocket() ? 'a socket'
    : stats.isCharacterDevice() || stats.isBlockDevice() ? 'a device' : 'not a regular file';
}

/** The file's bytes; SmallFileError says what went wrong, its message completing "<path> …". */
export function readSmallFile(path: string, maxBytes: number): Buffer {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (error) {
    throw failed(error);
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) throw new SmallFileError('NOT_A_FILE', `is ${kindOf(stats)}, not a regular file`, kindOf(stats));
    if (stats.size > maxBytes) throw new SmallFileError('TOO_LARGE', `is larger than ${maxBytes} bytes`);
    // Read until the end, but never beyond the bound: a file that grows while it is read is refused all the same.
    const chunks: Buffer[] = [];
    let length = 0;
    for (;;) {
      const chunk = Buffer.alloc(Math.max(stats.size + 1, 4096));
      const read = readSync(fd, chunk, 0, chunk.length, null);
      if (read === 0) break;
      chunks.push(chunk.subarray(0, read));
      length += read;
      if (length > maxBytes) throw new SmallFileError('TOO_LARGE', `is larger than ${maxBytes} bytes`);
    }
    return Buffer.concat(chunks, length);
  } catch (error) {
    throw error instanceof SmallFileError ? error : failed(error);
  } finally {
    closeSync(fd);
  }
}

function failed(error: unknown): SmallFileError {
  const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
  const what = code === 'ENOENT' ? 'does not exist' : code === 'EACCES' || code === 'EPERM' ? 'cannot be read by this user (permission denied)'
    : code === 'EISDIR' ? 'is a directory, not a regular file' : code === 'ELOOP' ? 'is a symbolic link loop' : `cannot be read (${code})`;
  return new SmallFileError(code, what);
}
