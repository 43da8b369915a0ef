/**
 * Reading an outputs file without trusting what sits at its path. Only a regular file is read (a symlink to one is
 * fine), and at most `maxOutputsFileBytes` of it; it is opened without blocking, because opening a FIFO for reading
 * waits for a writer, and a thread stuck in that open holds the process at exit (even a second signal's). What is not
 * a readable regular file is a ConfigError naming the path, what is there instead, and the fix.
 */
import { constants } from 'node:fs';
import { lstat, open } from 'node:fs/promises';
import { ConfigError } from '../core/errors.ts';
import { describeAccess } from './file-access.ts';

/** Far above any outputs file (a few kilobytes), far below what would hurt: a bound, not a tuning knob. */
export const maxOutputsFileBytes = 1024 * 1024;

export class UnreadableOutputsFile extends ConfigError {
  /** The path had nothing at all when read (removed since it was listed): not a problem of the file. */
  readonly vanished: boolean;
  constructor(field: string, message: string, fix: string, vanished = false) {
    super(field, message, fix);
    this.vanished = vanished;
  }
}

const regenerate = 'write it with `pulumi stack output --json --show-secrets > <file>`';

/** The file's bytes. `field` is what the error names first (`--outputs`, `--tenants`). */
export async function readOutputsBytes(path: string, field: string): Promise<Buffer> {
  let file;
  try {
    file = await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (error) {
    throw await openFailure(path, field, (error as NodeJS.ErrnoException).code ?? 'EIO');
  }
  try {
    const stats = await file.stat();
    if (!stats.isFile()) {
      const what = stats.isDirectory() ? 'a directory' : stats.isFIFO() ? 'a FIFO (named pipe)' : stats.isSocket() ? 'a socket' : stats.isCharacterDevice() || stats.isBlockDevice() ? 'a device' : 'not a regular file';
      throw new UnreadableOutputsFile(field, `${path} is ${what}, not an outputs file`, `remove it or give it another name than *.json; ${regenerate}`);
    }
    if (stats.size > maxOutputsFileBytes) throw tooLarge(path, field);
    // Read until the end, but never beyond the bound: a file that grows while it is read is refused all the same.
    const chunks: Buffer[] = [];
    let length = 0;
    for (;;) {
      const { bytesRead, buffer } = await file.read(Buffer.alloc(Math.max(stats.size + 1, 4096)), 0, undefined, null);
      if (bytesRead === 0) break;
      chunks.push(buffer.subarray(0, bytesRead));
      length += bytesRead;
      if (length > maxOutputsFileBytes) throw tooLarge(path, field);
    }
    return Buffer.concat(chunks, length);
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new UnreadableOutputsFile(field, `cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`, regenerate);
  } finally {
    await file.close().catch(() => {});
  }
}

function tooLarge(path: string, field: string): UnreadableOutputsFile {
  return new UnreadableOutputsFile(field, `${path} is larger than ${maxOutputsFileBytes} bytes, far more than an outputs file`, `check that it is one; ${regenerate}`);
}

async function openFailure(path: string, field: string, code: string): Promise<UnreadableOutputsFile> {
  if (code === 'EACCES' || code === 'EPERM') {
    // Who owns it and who the connector runs as: the container's `node` user and a root-owned `chmod 600` file meet here.
    const access = describeAccess(path);
    if (access) {
      return new UnreadableOutputsFile(field, `cannot read ${path}: permission denied: it is owned by ${access.owner} with mode ${access.mode}, and the connector runs as ${access.runsAs}, who may not read it`,
        `let that user read it and keep it private: chown ${access.uid} ${path} && chmod 600 ${path} (in the container the connector runs as node, uid 1000), or run the connector as the file's owner`);
    }
    return new UnreadableOutputsFile(field, `cannot read ${path}: permission denied (a directory on its path may not be searched by this user, uid ${process.getuid?.() ?? '?'})`,
      'let the user the connector runs as reach and read the file');
  }
  if (code === 'ELOOP') return new UnreadableOutputsFile(field, `${path} is a symbolic link loop`, `point the link at an outputs file, or remove it; ${regenerate}`);
  if (code === 'ENOENT' || code === 'ENOTDIR') {
    const link = await lstat(path).then((stats) => stats.isSymbolicLink(), () => undefined);
    if (link) return new UnreadableOutputsFile(field, `${path} is a symbolic link to a file that does not exist`, `point the link at an outputs file, or remove it; ${regenerate}`);
    return new UnreadableOutputsFile(field, `cannot read ${path} (${code})`, regenerate, link === undefined);
  }
  return new UnreadableOutputsFile(field, `cannot read ${path} (${code})`, regenerate);
}
