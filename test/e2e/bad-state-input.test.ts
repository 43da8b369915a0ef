/**
 * State input a user can get wrong, met by the real binary: one line naming what is wrong and the fix, exit 2,
 * never an internal error.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { DatabaseSync } from 'node:sqlite';
import { join, resolve } from 'node:path';
import { openStateStore } from '../connector/state/open-store.ts';
import { startEmulator } from '../emulator/index.ts';
import { workDir, writeOutputs } from './support.ts';

const root = resolve(import.meta.dirname, '../..');
const emulator = await startEmulator({ seed: 10, days: 0.01, enabledContentTypes: ['Audit.General'] });
afterAll(() => emulator.stop());

function cli(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, [join(root, 'connector/bin.mjs'), ...args], { env: { ...process.env, O365_LOG_LEVEL: 'error' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('exit', (code) => { clearTimeout(timer); resolvePromise({ code, stderr }); });
  });
}

describe('bad state input: one line, exit 2', () => {
  it('a PostgreSQL URL whose sslrootcert names a missing file', async () => {
    const dir = await workDir();
    const outputs = await writeOutputs(emulator, dir);
    const missing = join(dir, 'no-such-ca.pem');
    const result = await cli(['run', '--once', '--outputs', outputs, '--state', `postgresql://o365@127.0.0.1:5432/o365?sslmode=verify-full&sslrootcert=${missing}`]);
    expect(result.code, result.stderr).toBe(2);
    expect(result.stderr).toBe(`error: CONFIG_INVALID: the state database URL's sslrootcert ${missing} cannot be read: no such file. Fix: give sslrootcert the path of a PEM file the connector's user may read (the CA that signed the server's certificate)\n`);
  });

  it('a state.db whose schema_version row was deleted', { timeout: 60_000 }, async () => {
    const dir = await workDir();
    const outputs = await writeOutputs(emulator, dir);
    const state = join(dir, 'state');
    await mkdir(state);
    const store = await openStateStore(state, { tenant: emulator.tenantId, lockWaitMs: 0 });
    await store.close();
    const db = new DatabaseSync(join(state, 'state.db'));
    db.exec("DELETE FROM meta WHERE key = 'schema_version'");
    db.close();
    const result = await cli(['run', '--once', '--outputs', outputs, '--state', state, '--sink', `file:${join(dir, 'audit.ndjson')}`]);
    expect(result.code, result.stderr).toBe(2);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^error: STATE_DAMAGED: \S+state\.db has a meta table without its schema_version row \(edited or damaged\): which migrations ran cannot be told\. Fix: restore the state from a backup; /);
  });
});
