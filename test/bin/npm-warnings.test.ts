/**
 * The README says the machine's own Node is not used; npm itself runs on it, though, and warned EBADENGINE for this
 * package on every npx call when it is older than 22 (issue 23, 8). Run as a newcomer runs it: the machine's npm on
 * the machine's Node, outside npm's PATH (which puts the pinned Node first).
 */
import { describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, realpathSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '../..');

/** A Node older than 22 on PATH beside its own npm, outside node_modules (the pinned one): the machine's. */
function machineNode(): { node: string; npm: string } | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    if (!dir || dir.includes('node_modules')) continue;
    const node = join(dir, 'node');
    if (!existsSync(node)) continue;
    const version = spawnSync(node, ['-p', 'process.versions.node'], { encoding: 'utf8' }).stdout.trim();
    if (Number(version.split('.')[0]) >= 22) continue;
    const npm = join(dirname(dirname(realpathSync(node))), 'lib', 'node_modules', 'npm', 'bin', 'npm-cli.js');
    if (existsSync(npm)) return { node, npm };
  }
  return undefined;
}

const machine = machineNode();

describe.skipIf(machine === undefined)(`npm on the machine's own, older Node${machine ? '' : ' (skipped: no Node older than 22 with its npm on PATH)'}`, () => {
  /** npm as a shell runs it: the machine's Node, none of the npm_* variables of the npm that started the tests. */
  function npm(args: string[]) {
    const path = (process.env['PATH'] ?? '').split(delimiter).filter((dir) => !dir.includes('node_modules')).join(delimiter);
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)));
    return spawnSync(machine!.node, [machine!.npm, ...args], { cwd: root, encoding: 'utf8', env: { ...env, PATH: path }, timeout: 240_000 });
  }

  it('npm ci (dry run) and npx o365-connector print no EBADENGINE warning', { timeout: 300_000 }, () => {
    const install = npm(['ci', '--dry-run', '--ignore-scripts']);
    expect(install.status, install.stderr).toBe(0);
    expect(install.stderr + install.stdout).not.toMatch(/EBADENGINE/);
    const help = npm(['exec', '--no', '--', 'o365-connector', '--help']);
    expect(help.status, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/^Usage: o365-connector/);
    expect(help.stderr).not.toMatch(/EBADENGINE/);
    // The connector itself runs on the pinned Node, as the README says.
    expect(execFileSync(join(root, 'node_modules', 'node', 'bin', 'node'), ['-p', 'process.versions.node'], { encoding: 'utf8' }).trim().split('.')[0]).toBe('24');
  });
});
