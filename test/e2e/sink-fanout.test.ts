import { afterAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { startEmulator } from '../emulator/index.ts';
import { createTestPki } from '../emulator/tls.ts';
import { contentTypes } from '../../connector/api/content-types.ts';
import { hecReceiver } from '../receivers/http-receivers.ts';
import { rsyslogUnavailable, startRsyslog } from '../receivers/rsyslog.ts';
import { expectExactlyOnce, recordIds, workDir, writeOutputs } from './support.ts';

const root = resolve(import.meta.dirname, '../..');
const frozen = new Date(Math.floor(Date.now() / 60_000) * 60_000);
const emulator = await startEmulator({ now: () => frozen, seed: 31, days: 1, recordsPerBlob: 10, duplicateRate: 0.2, enabledContentTypes: [...contentTypes] });
afterAll(() => emulator.stop());
const skip = rsyslogUnavailable();

describe.skipIf(skip !== undefined)('run --sink fan-out', () => {
  it('delivers the same records to a file, a real rsyslog and Splunk HEC in one run', { timeout: 120_000 }, async () => {
    const dir = await workDir();
    const pki = await createTestPki({ dir: join(dir, 'pki') });
    const rsyslog = await startRsyslog(dir, pki);
    const hec = await hecReceiver('hec-token-fanout');
    try {
      const outputs = await writeOutputs(emulator, dir);
      const sinks = [`file:${join(dir, 'audit.ndjson')}`, `syslog+tls://127.0.0.1:${rsyslog.tlsPort}?ca=${pki.caFile}`, `splunk-hec://127.0.0.1:${new URL(hec.url).port}?tls=0&tokenEnv=HEC_TOKEN`];
      const code = await new Promise<number>((done) => execFile(process.execPath, [join(root, 'connector/bin.mjs'), 'run', '--once', '--outputs', outputs, '--state', join(dir, 'state'), '--requests-per-minute', '100000', ...sinks.flatMap((s) => ['--sink', s])], {
        cwd: dir, env: { ...process.env, NODE_EXTRA_CA_CERTS: emulator.caFile, HEC_TOKEN: 'hec-token-fanout', O365_LOG_LEVEL: 'warn' },
      }, (error, _stdout, stderr) => { if (error) console.error(stderr); done(error ? Number(error.code) || 1 : 0); }));
      expect(code).toBe(0);
      const truth = emulator.groundTruth();
      expect(expectExactlyOnce(await recordIds(join(dir, 'audit.ndjson')), truth)).toEqual({ missing: 0, duplicated: 0, extra: 0 });
      const hecIds = hec.requests.flatMap((r) => r.body.split('\n').map((line) => (JSON.parse(line) as { event: { Id: string } }).event.Id));
      expect(expectExactlyOnce(hecIds, truth)).toEqual({ missing: 0, duplicated: 0, extra: 0 });
      const deadline = Date.now() + 20_000;
      let syslogIds: string[] = [];
      while (Date.now() < deadline) {
        syslogIds = (await rsyslog.received()).map((r) => String(r.record['Id']));
        if (syslogIds.length >= truth.size) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(expectExactlyOnce(syslogIds, truth)).toEqual({ missing: 0, duplicated: 0, extra: 0 });
    } finally {
      await rsyslog.stop();
      await hec.close();
    }
  });
});
