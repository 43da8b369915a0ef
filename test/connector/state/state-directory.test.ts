import { describe, expect, it, onTestFinished } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdir, readdir, symlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { prepareStateDirectory } from '../../../connector/state/sqlite/state-directory.ts';
import { openStateStore } from './open-store.ts';
import { workDir } from '../../e2e/support.ts';
import { asNobody, runnableByNobody } from '../../run-as-nobody.ts';

const root = resolve(import.meta.dirname, '../../..');
const refusal = (dir: string) => {
  try {
    prepareStateDirectory(dir);
  } catch (error) {
    return error as { code: string; toLine(): string };
  }
  throw new Error(`accepted ${dir}`);
};

describe('--state: what may be a state directory', () => {
  it('creates a missing directory (0700), and accepts an empty one and one holding the connector\'s state', async () => {
    const dir = await workDir();
    prepareStateDirectory(join(dir, 'new', 'state'));
    await mkdir(join(dir, 'empty'));
    prepareStateDirectory(join(dir, 'empty'));
    const store = await openStateStore(join(dir, 'used'), { lockWaitMs: 0 });
    await store.close();
    await writeFile(join(dir, 'used', 'notes.txt'), 'ours, beside the state');
    prepareStateDirectory(join(dir, 'used'));
  });

  it.each(['/', '/etc', '/var/lib', '/usr', '/tmp'])('refuses %s, a directory of the system itself', (dir) => {
    const error = refusal(dir);
    expect(error.code).toBe('STATE_UNSAFE');
    expect(error.toLine()).toBe(`STATE_UNSAFE: --state ${dir} is a directory of the system itself, not one for the connector's state. Fix: give --state a new or empty directory of its own, e.g. /var/lib/o365`);
  });

  it('sees through a symbolic link to a system directory', async () => {
    const link = join(await workDir(), 'looks-harmless');
    await symlink('/etc', link);
    expect(refusal(link).toLine()).toMatch(/^STATE_UNSAFE: --state \S+looks-harmless is \/etc, a directory of the system itself/);
  });

  it('refuses a file, and a path under a file', async () => {
    const file = join(await workDir(), 'outputs.json');
    await writeFile(file, '{}');
    expect(refusal(file).toLine()).toBe(`STATE_NOT_A_DIRECTORY: --state ${file} is a file, not a directory. Fix: give --state a new or empty directory of its own, e.g. /var/lib/o365`);
    expect(refusal(join(file, 'state')).code).toBe('STATE_NOT_A_DIRECTORY');
  });

  it('refuses a non-empty directory holding nothing of the connector\'s, and leaves its lock and temp files alone', async () => {
    const dir = await workDir();
    for (const name of ['lock', 'report.tmp', 'Q4 forecast.xlsx']) await writeFile(join(dir, name), 'someone else\'s');
    expect(refusal(dir).toLine()).toMatch(/^STATE_FOREIGN_DIRECTORY: --state \S+ holds 3 file\(s\) and none of them is the connector's state \(e\.g\. /);
    await expect(openStateStore(dir, { lockWaitMs: 0 })).rejects.toMatchObject({ code: 'STATE_FOREIGN_DIRECTORY' });
    expect((await readdir(dir)).sort()).toEqual(['Q4 forecast.xlsx', 'lock', 'report.tmp']);
  });

  const setpriv = spawnSync('setpriv', ['--version']).status === 0 && process.getuid?.() === 0;
  it.skipIf(!setpriv)('says a directory the user may not write is not permitted, naming it (run as nobody)', async (context) => {
    const dir = await workDir(); // 0700, owned by root
    const run = await runnableByNobody(join(root, 'connector/state/sqlite/state-directory.ts'));
    onTestFinished(run.remove);
    if ('skip' in run) return context.skip(run.skip);
    const script = `import { prepareStateDirectory } from ${JSON.stringify(run.module)};
      try { prepareStateDirectory(${JSON.stringify(join(dir, 'state'))}); } catch (e) { console.log(e.toLine()); }`;
    const result = spawnSync('setpriv', [...asNobody, run.node, '--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(result.stdout.trim(), result.stderr).toBe(`STATE_NOT_PERMITTED: --state ${join(dir, 'state')} cannot be created: permission denied. Fix: run as a user who owns it, or give --state a directory that user may write (e.g. chown it)`);
  });
});
