/**
 * Reading an outputs file without trusting what sits at its path (core/small-file.ts: a regular file only, at most
 * `maxOutputsFileBytes`, opened without blocking). What is not a readable regular file is a ConfigError naming the
 * path, what is there instead, and the fix.
 */
import { lstat } from 'node:fs/promises';
import { readSmallFile, SmallFileError } from '../core/small-file.ts';
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
  try {
    return readSmallFile(path, maxOutputsFileBytes);
  } catch (error) {
    if (!(error instanceof SmallFileError)) throw error;
    if (error.code === 'NOT_A_FILE') throw new UnreadableOutputsFile(field, `${path} is ${error.kind}, not an outputs file`, `remove it or give it another name than *.json; ${regenerate}`);
    if (error.code === 'TOO_LARGE') throw tooLarge(path, field);
    throw await openFailure(path, field, error.code);
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
