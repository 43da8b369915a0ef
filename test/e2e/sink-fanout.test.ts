import { afterAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { startEmulator } from '../emulator/index.ts';
import { createTestPki } from '../emulator/tls.ts';
import { contentTypes } from '../../contract/content-types.ts';
import { hecReceiver } from '../receivers/http-receivers.ts';
import { rsyslogUnavailable, startRsyslog } from '../receivers/rsyslog.ts';
import { compareRecordBytes, expectExactBytes, fileLines, memberBytes, splitLines, workDir, writeOutputs } from './support.ts';

const root = resolve(import.meta.dirname, '../..');
const frozen = new Date(Math.floor(Date.now() / 60_000) * 60_000);
const emulator = await startEmulator({ now: () => frozen, seed: 31, days: 1, recordsPerBlob: 10, duplicateRate: 0.2, enabledContentTypes: [...contentTypes] });
afterAll(() => emulator.stop());
const skip = rsyslogUnavailable();

describe.skipIf(skip !== undefined)('run --sink fan-out', () => {
  it('delivers the same records, byte for byte, to a file, a real rsyslog and Splunk HEC in one run', { timeout: 120_000 }, async () => {
    const dir = await workDir();
    const pki = await createTestPki({ dir: join(dir, 'pki') });
    const rsyslog = await startRsyslog(dir, pki);
    const hec = await hecReceiver('hec-token-fanout');
    try {
      const outputs = await writeOutputs(emulator, dir);
      const sinks = [`file:${join(dir, 'audit.ndjson')}`, `syslog+tls://127.0.0.1:${rsyslog.tlsPort}?ca=${pki.caFile}`, `splunk-hec://127.0.0.1:${new URL(hec.url).port}?tls=0&insecure=1&tokenEnv=HEC_TOKEN`];
      const code = await new Promise<number>((done) => execFile(process.execPath, [join(root, 'connector/bin.mjs'), 'run', '--once', '--outputs', outputs, '--state', join(dir, 'state'), '--requests-per-minute', '100000', ...sinks.flatMap((s) => ['--sink', s])], {
        cwd: dir, env: { ...process.env, NODE_EXTRA_CA_CERTS: emulator.caFile, HEC_TOKEN: 'hec-token-fanout', O365_LOG_LEVEL: 'warn' },
      }, (error, _stdout, stderr) => { if (error) console.error(stderr); done(error ? Number(error.code) || 1 : 0); }));
      expect(code).toBe(0);
      // Every sink gets the records as the bytes Microsoft sent: compared byte for byte with what the stand-in served.
      const truth = emulator.groundTruthBytes();
      expectExactBytes(await fileLines(join(dir, 'audit.ndjson')), truth);
      const hecEvents = hec.requests.flatMap((r) => splitLines(r.raw)).map((envelope) => memberBytes(envelope, 'event') ?? envelope);
      expectExactBytes(hecEvents, truth);
      const syslogRecords = async () => (await rsyslog.received()).map((r) => Buffer.from(r.message, 'utf8'));
      await expect.poll(async () => compareRecordBytes(await syslogRecords(), truth).missing, { timeout: 20_000, interval: 50 }).toBe(0);
      expectExactBytes(await syslogRecords(), truth);
    } finally {
      await rsyslog.stop();
      await hec.close();
    }
  });
});
