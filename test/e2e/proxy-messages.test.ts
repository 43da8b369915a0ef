/**
 * What `test` says about the proxy when the proxy is not in the way (NO_PROXY) or is down: the truth, naming the
 * proxy as the proxy and the target as the target. No proxy runs here: a closed port stands for one that is down.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { startEmulator } from '../emulator/index.ts';
import { freePort } from '../receivers/rsyslog.ts';
import { workDir, writeOutputs } from './support.ts';

const root = resolve(import.meta.dirname, '../..');
const emulator = await startEmulator({ seed: 11, days: 0.01, enabledContentTypes: ['Audit.General'] });
afterAll(() => emulator.stop());

function cli(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  // Only what the test sets: no proxy variable of the machine leaks in.
  const base = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^(https?|no|all)_proxy$/i.test(key) && !key.startsWith('O365_')));
  return new Promise((resolveResult) => {
    execFile(process.execPath, [join(root, 'connector/bin.mjs'), ...args], { env: { ...base, NODE_EXTRA_CA_CERTS: emulator.caFile, O365_LOG_LEVEL: 'error', ...env }, timeout: 60_000 }, (error, stdout, stderr) => {
      resolveResult({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

describe('proxy messages', () => {
  it('test with NO_PROXY naming the endpoint while the proxy is down: connects directly and does not claim "via proxy"', { timeout: 60_000 }, async () => {
    const outputs = await writeOutputs(emulator, await workDir());
    const port = await freePort();
    const result = await cli(['test', '--outputs', outputs], { HTTPS_PROXY: `http://127.0.0.1:${port}`, NO_PROXY: '127.0.0.1' });
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^Connection successful \\S+ tenant \\S+ \\(commercial, 127\\.0\\.0\\.1:${emulator.port}, direct: NO_PROXY names it\\)`));
    expect(result.stdout).not.toContain('via proxy');
  });

  it('test with the proxy down: one line naming the proxy as the proxy and the target as the target (exit 5)', { timeout: 60_000 }, async () => {
    const outputs = await writeOutputs(emulator, await workDir());
    const port = await freePort();
    const result = await cli(['test', '--outputs', outputs], { HTTPS_PROXY: `http://127.0.0.1:${port}` });
    expect(result.code, result.stderr).toBe(5);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^error: PROXY_UNREACHABLE: cannot reach the proxy 127\\.0\\.0\\.1:${port} on the way to 127\\.0\\.0\\.1:${emulator.port}: connect ECONNREFUSED 127\\.0\\.0\\.1:${port}\\. Fix: start the proxy, or correct --proxy / O365_PROXY / HTTPS_PROXY; a host reached directly goes in NO_PROXY$`));
  });
});
