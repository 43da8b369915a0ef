import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readSmallFile, SmallFileError } from '../../../connector/core/small-file.ts';
import { workDir } from '../../e2e/support.ts';

function refusal(path: string, maxBytes = 1024): SmallFileError {
  try {
    readSmallFile(path, maxBytes);
  } catch (error) {
    if (error instanceof SmallFileError) return error;
    throw error;
  }
  throw new Error(`${path} was read`);
}

describe('a small file a setting names', () => {
  it('is read whole when it is a regular file, through a symbolic link too', async () => {
    const dir = await workDir();
    await writeFile(join(dir, 'ca.pem'), '-----BEGIN CERTIFICATE-----\n');
    await symlink(join(dir, 'ca.pem'), join(dir, 'link.pem'));
    expect(readSmallFile(join(dir, 'link.pem'), 1024).toString()).toBe('-----BEGIN CERTIFICATE-----\n');
  });

  it('is refused at once, never waited on, when a FIFO, a directory or a device sits at its path; and when missing or too large', async () => {
    const dir = await workDir();
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    await mkdir(join(dir, 'folder'));
    await writeFile(join(dir, 'big'), 'x'.repeat(2000));
    expect(refusal(join(dir, 'fifo'))).toMatchObject({ code: 'NOT_A_FILE', kind: 'a FIFO (named pipe)', message: 'is a FIFO (named pipe), not a regular file' });
    expect(refusal(join(dir, 'folder'))).toMatchObject({ code: 'NOT_A_FILE', kind: 'a directory' });
    expect(refusal('/dev/zero')).toMatchObject({ code: 'NOT_A_FILE', kind: 'a device' });
    expect(refusal(join(dir, 'big'))).toMatchObject({ code: 'TOO_LARGE', message: 'is larger than 1024 bytes' });
    expect(refusal(join(dir, 'missing'))).toMatchObject({ code: 'ENOENT', message: 'does not exist' });
  });
});
