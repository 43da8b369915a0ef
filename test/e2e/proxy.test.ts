import { afterAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { startEmulator } from '../emulator/index.ts';
import { createTestPki } from '../emulator/tls.ts';
import { ndjsonReceiver } from '../receivers/http-receivers.ts';
import { startTinyproxy, tinyproxyUnavailable } from '../receivers/tinyproxy.ts';
import { compareFileBytes, exactBytes, workDir, writeOutputs } from './support.ts';

const root = resolve(import.meta.dirname, '../..');
const skip = tinyproxyUnavailable();
const frozen = new Date(Math.floor(Date.now() / 60_000) * 60_000);
const pki = await createTestPki();
const emulator = await startEmulator({ pki, now: () => frozen, seed: 19, days: 1, blobIntervalMinutes: 120, recordsPerBlob: 10, enabledContentTypes: ['Audit.General'] });
const password = 'pr0xy-pass-8841';
afterAll(() => emulator.stop());

interface Result { code: number; stdout: string; stderr: string }
function cli(args: string[], env: Record<string, string>): Promise<Result> {
  // Only what the test sets: no proxy variable of the machine leaks in.
  const base = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^(https?|no|all)_proxy$/i.test(key) && !key.startsWith('O365_')));
  return new Promise((resolveResult) => {
    execFile(join(root, 'bin/o365-connector'), args, { env: { ...base, NODE_EXTRA_CA_CERTS: emulator.caFile, O365_LOG_LEVEL: 'warn', ...env } }, (error, stdout, stderr) => {
      resolveResult({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

describe.skipIf(skip !== undefined)(`behind a forward proxy (a real tinyproxy)${skip ? ` (skipped: ${skip})` : ''}`, () => {
  it('runs entirely through an authenticating proxy: every connection to Microsoft is a tunnel, none direct, and no credential shows', { timeout: 120_000 }, async () => {
    const dir = await workDir();
    const proxy = await startTinyproxy(dir, { user: 'alice', password });
    try {
      const outputs = await writeOutputs(emulator, dir);
      const sink = join(dir, 'audit.ndjson');
      emulator.resetCounters();
      const run = await cli(['run', '--once', '--outputs', outputs, '--state', join(dir, 'state'), '--sink', `file:${sink}`, '--content-types', 'Audit.General', '--since', '2d'],
        { HTTPS_PROXY: `http://alice:${password}@127.0.0.1:${proxy.port}` });
      expect(run.code, run.stderr).toBe(0);
      expect(await compareFileBytes(sink, emulator.groundTruthBytes('Audit.General'))).toEqual(exactBytes);
      const tunnels = await proxy.tunnels();
      expect(tunnels.length).toBeGreaterThan(0);
      expect(new Set(tunnels)).toEqual(new Set([`127.0.0.1:${emulator.port}`]));
      expect(emulator.counters().connections).toBe(tunnels.length); // nothing reached the stand-in but through the proxy
      expect(`${run.stdout}${run.stderr}`).not.toContain(password);

      const test = await cli(['test', '--outputs', outputs], { O365_PROXY: `http://127.0.0.1:${proxy.port}`, O365_PROXY_USERNAME: 'alice', O365_PROXY_PASSWORD: password });
      expect(test.code, test.stderr).toBe(0);
      expect(test.stdout).toMatch(new RegExp(`^Connection successful \\S+ tenant \\S+ \\(commercial, 127\\.0\\.0\\.1:${emulator.port} via proxy 127\\.0\\.0\\.1:${proxy.port}\\)`));

      const wrong = await cli(['test', '--outputs', outputs], { HTTPS_PROXY: `http://alice:not-${password}@127.0.0.1:${proxy.port}` });
      expect(wrong.code).toBe(5);
      expect(wrong.stderr.trim()).toMatch(new RegExp(`^error: PROXY_AUTH: the proxy answered HTTP 40[17] to the CONNECT to 127\\.0\\.0\\.1:${emulator.port}: its credentials are missing or wrong\\. Fix: give the proxy user and password in the proxy URL or in O365_PROXY_USERNAME and O365_PROXY_PASSWORD$`));
      expect(`${wrong.stdout}${wrong.stderr}`).not.toContain(password);
    } finally {
      await proxy.stop();
    }
  });

  it('sends sinks direct unless their spec says proxy=1, and then not to a host NO_PROXY names', { timeout: 120_000 }, async () => {
    const dir = await workDir();
    const proxy = await startTinyproxy(dir);
    const receiver = await ndjsonReceiver({ tls: { cert: pki.server.certPem, key: pki.server.keyPem } });
    try {
      const outputs = await writeOutputs(emulator, dir);
      const sinkHost = `localhost:${new URL(receiver.url).port}`;
      const spec = (extra: string) => `https://${sinkHost}/ingest?ca=${pki.caFile}${extra}`;
      const runWith = async (name: string, sinkSpec: string, env: Record<string, string>) => {
        const result = await cli(['run', '--once', '--outputs', outputs, '--state', join(dir, name), '--sink', sinkSpec, '--content-types', 'Audit.General', '--since', '2d'], { HTTPS_PROXY: proxy.url, ...env });
        expect(result.code, result.stderr).toBe(0);
        return proxy.tunnels();
      };
      expect(await runWith('direct', spec(''), {})).not.toContain(sinkHost);
      expect(await runWith('proxied', spec('&proxy=1'), {})).toContain(sinkHost);
      const before = (await proxy.tunnels()).filter((tunnel) => tunnel === sinkHost).length;
      const excluded = await runWith('excluded', spec('&proxy=1'), { NO_PROXY: 'localhost' });
      expect(excluded.filter((tunnel) => tunnel === sinkHost).length).toBe(before);
      expect(excluded.at(-1)).toBe(`127.0.0.1:${emulator.port}`); // Microsoft still through the proxy
      expect(receiver.requests.length).toBeGreaterThan(0);
    } finally {
      await receiver.close();
      await proxy.stop();
    }
  });
});
