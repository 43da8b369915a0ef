import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

const repositoryRoot = join(import.meta.dirname, '..');
const runDirectory = join(import.meta.dirname, 'fixtures/reporter-run');

/** Runs vitest on test/fixtures/reporter-run (files that pass, fail, skip and break) with the project's reporters. */
async function runChecks(): Promise<{ status: number | null; stdout: string }> {
  const vitest = join(repositoryRoot, 'node_modules/vitest/vitest.mjs');
  const child = spawn(process.execPath, [vitest, 'run', '--root', runDirectory], { env: { ...process.env, CI: 'true', NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'ignore'] });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk; });
  const status = await new Promise<number | null>((resolve, reject) => { child.on('error', reject).on('close', resolve); });
  return { status, stdout };
}

describe('the closing line and the slowest files', () => {
  let status: number | null;
  let stdout: string;
  beforeAll(async () => { ({ status, stdout } = await runChecks()); });

  it('counts a file that failed to load, tests stopped by a failed hook and a failed afterAll as failed, never as missing or skipped', () => {
    expect(status).toBe(1);
    const lines = stdout.trimEnd().split('\n');
    // 2 passed (mixed, after-all-fails); 5 failed: the file that failed to load (1), the two tests its beforeAll
    // stopped, the failing test, the afterAll; 2 skipped on purpose.
    expect(lines.at(-1)).toBe('2 passed, 5 failed, 2 skipped');
    expect(stdout).toContain('failed: fails-to-load.check.ts: no such data file (the file failed to load; its tests are unknown, counted as 1 failed)');
    expect(stdout).toContain('failed: hook-fails.check.ts > a suite whose beforeAll fails: the receiver did not start (its 2 test(s) did not run, counted as failed)');
    expect(stdout).toContain('failed: after-all-fails.check.ts: the receiver did not stop (counted as 1 failed)');
    expect(stdout).toContain('skipped: mixed.check.ts > is skipped with a reason: no schema source at hand');
  });

  it('lists the slowest test files with their durations before the closing line', () => {
    const listing = stdout.slice(stdout.indexOf('Slowest test files:'));
    const files = [...listing.matchAll(/^ +\d+\.\d s {2}(\S+)$/gm)].map((match) => match[1]);
    expect(files.sort()).toEqual(['after-all-fails.check.ts', 'fails-to-load.check.ts', 'hook-fails.check.ts', 'mixed.check.ts']);
  });
});
