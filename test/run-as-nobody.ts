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

/** The Node binary and `entry` bundled, where nobody can run them, or why not; `remove` deletes them. */
export async function runnableByNobody(entry: string): Promise<({ node: string; module: string } | { skip: string }) & { remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'o365-nobody-'));
  const remove = () => rm(dir, { recursive: true, force: true });
  await chmod(dir, 0o755);
  const node = join(dir, 'node');
  await link(process.execPath, node).catch(() => copyFile(process.execPath, node));
  await chmod(node, 0o755);
  const module = join(dir, 'module.mjs');
  await build({
    input: entry,
    platform: 'node',
    external: [...builtinModules, /^node:/],
    logLevel: 'silent',
    output: { file: module, format: 'esm' },
  });
  await chmod(module, 0o644);
  const probe = spawnSync('setpriv', [...asNobody, node, '-e', `require('node:fs').accessSync(${JSON.stringify(module)})`], { encoding: 'utf8' });
  if (probe.status !== 0) return { skip: `nobody cannot run Node from ${dir} (${(probe.stderr || String(probe.error)).trim().split('\n')[0]})`, remove };
  return { node, module, remove };
}

/** The connector's bundle (`dist/o365-connector.mjs` of `root`) and the Node binary where nobody can run them, or why not. */
export async function connectorRunnableByNobody(root: string): Promise<({ node: string; entry: string } | { skip: string }) & { remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'o365-nobody-'));
  const remove = () => rm(dir, { recursive: true, force: true });
  await chmod(dir, 0o755);
  const node = join(dir, 'node');
  await link(process.execPath, node).catch(() => copyFile(process.execPath, node));
  await chmod(node, 0o755);
  const entry = join(dir, 'o365-connector.mjs');
  await copyFile(join(root, 'dist/o365-connector.mjs'), entry);
  await chmod(entry, 0o644);
  const probe = spawnSync('setpriv', [...asNobody, node, '-e', `require('node:fs').accessSync(${JSON.stringify(entry)})`], { encoding: 'utf8' });
  if (probe.status !== 0) return { skip: `nobody cannot run Node from ${dir} (${(probe.stderr || String(probe.error)).trim().split('\n')[0]})`, remove };
  return { node, entry, remove };
}
