/**
 * The layers of the house hold (README, "How it is built"): dependency-cruiser, with the rules of
 * .dependency-cruiser.cjs, finds no import cycle and no import that runs against the layers.
 */
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '../..');
const depcruise = join(root, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruiser.mjs');
const knownViolations = join(root, '.dependency-cruiser-known-violations.json');

function cruise(): Promise<{ code: number; output: string }> {
  const args = [depcruise, '--config', '.dependency-cruiser.cjs', '--output-type', 'err'];
  if (existsSync(knownViolations)) args.push('--ignore-known', knownViolations);
  args.push('contract', 'connector', 'infra', 'scripts', 'test/emulator');
  return new Promise((done) => {
    execFile(process.execPath, args, { cwd: root }, (error, stdout, stderr) => {
      done({ code: typeof error?.code === 'number' ? error.code : error ? 1 : 0, output: `${stdout}${stderr}` });
    });
  });
}

describe('the layers', () => {
  it('no import runs against the layers, none runs in a circle, and infra/ shares only contract/ with the connector', async () => {
    const { code, output } = await cruise();
    expect(output.split('\n').filter((line) => /^\s*error /.test(line)), output).toEqual([]);
    expect(code, output).toBe(0);
  });
});
