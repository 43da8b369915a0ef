/**
 * What a child run as `nobody` needs, put where `nobody` can read it: the checkout may sit in a directory only its
 * owner can enter (a clone in `mktemp -d`, mode 0700), so neither the pinned Node binary nor the module under test
 * can be reached from there. The module is bundled into one file with rolldown, and the Node binary linked (or,
 * across file systems, copied) beside it, in a temporary directory open to every user.
 */
import { spawnSync } from 'node:child_process';
import { chmod, copyFile, link, mkdtemp, rm } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'rolldown';

/** setpriv's arguments that drop to nobody (uid and gid 65534) without supplementary groups. */
export const asNobody = ['--reuid=65534', '--regid=65534', '--clear-groups'];

type ForNobody<T> = (T | { skip: string }) & { remove: () => Promise<void> };

/**
 * A directory open to every user holding the Node binary and the file `place` writes there (named `name`); the
 * file's path, or why nobody still cannot read it.
 */
async function besideNodeForNobody(name: string, place: (path: string) => Promise<void>): Promise<ForNobody<{ node: string; path: string }>> {
  const dir = await mkdtemp(join(tmpdir(), 'o365-nobody-'));
  const remove = () => rm(dir, { recursive: true, force: true });
  await chmod(dir, 0o755);
  const node = join(dir, 'node');
  await link(process.execPath, node).catch(() => copyFile(process.execPath, node));
  await chmod(node, 0o755);
  const path = join(dir, name);
  await place(path);
  await chmod(path, 0o644);
  const probe = spawnSync('setpriv', [...asNobody, node, '-e', `require('node:fs').accessSync(${JSON.stringify(path)})`], { encoding: 'utf8' });
  if (probe.status !== 0) return { skip: `nobody cannot run Node from ${dir} (${(probe.stderr || String(probe.error)).trim().split('\n')[0]})`, remove };
  return { node, path, remove };
}

/** The Node binary and `entry` bundled, where nobody can run them, or why not; `remove` deletes them. */
export async function runnableByNobody(entry: string): Promise<ForNobody<{ node: string; module: string }>> {
  const made = await besideNodeForNobody('module.mjs', async (module) => {
    await build({ input: entry, platform: 'node', external: [...builtinModules, /^node:/], logLevel: 'silent', output: { file: module, format: 'esm' } });
  });
  return 'skip' in made ? made : { node: made.node, module: made.path, remove: made.remove };
}

/** The connector's bundle (`dist/o365-connector.mjs` of `root`) and the Node binary where nobody can run them, or why not. */
export async function connectorRunnableByNobody(root: string): Promise<ForNobody<{ node: string; entry: string }>> {
  const made = await besideNodeForNobody('o365-connector.mjs', (entry) => copyFile(join(root, 'dist/o365-connector.mjs'), entry));
  return 'skip' in made ? made : { node: made.node, entry: made.path, remove: made.remove };
}
