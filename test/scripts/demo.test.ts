/**
 * `npm run demo` shows what it claims (a second run on the same state adds nothing, status shows a sweep) and ends by
 * naming the one command that serves its outputs file again, which then works (issue 23, 7).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join, resolve } from 'node:path';
import { workDir } from '../e2e/support.ts';

const root = resolve(import.meta.dirname, '../..');
const stopping: Array<() => void> = [];
afterAll(() => { for (const stop of stopping) stop(); });

function node(args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, args, { cwd, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, O365_LOG_LEVEL: 'warn' } }, (error, stdout, stderr) => {
      done({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

describe('npm run demo', () => {
  it('runs twice on one state (the second adds nothing), ends with a sweep in status, and names the command that serves its outputs file again', { timeout: 120_000 }, async () => {
    const cwd = await workDir();
    const demo = await node([join(root, 'scripts/demo.ts')], cwd);
    expect(demo.code, demo.stderr).toBe(0);
    expect(demo.stderr).toMatch(/^demo: the second run added 0 records \(the file still holds [1-9]\d*\)/m);
    const rows = demo.stdout.split('\n').filter((line) => /^(Audit|DLP)\.\S+\s+Active/.test(line));
    expect(rows).toHaveLength(5);
    for (const row of rows) expect(row.trim().split(/\s+/).at(-1)).toMatch(/^\d{4}-\d{2}-\d{2}T/);
    const command = /^ {2}npm run emulator -- (.+)$/m.exec(demo.stderr)?.[1];
    expect(command).toBe('--seed 42 --config-out .o365-demo/outputs.json');

    // Without the stand-in the file points at nothing; with the command the demo named, `test` passes again.
    expect((await node([join(root, 'connector/bin.mjs'), 'test', '--outputs', '.o365-demo/outputs.json'], cwd)).code).toBe(5);
    const standIn = spawn(process.execPath, [join(root, 'scripts/emulator.ts'), ...command!.split(' ')], { cwd, stdio: ['ignore', 'pipe', 'inherit'] });
    stopping.push(() => standIn.kill('SIGTERM'));
    await new Promise((ready) => createInterface({ input: standIn.stdout! }).once('line', ready));
    const again = await node([join(root, 'connector/bin.mjs'), 'test', '--outputs', '.o365-demo/outputs.json'], cwd);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/^Connection successful /);
  });
});
