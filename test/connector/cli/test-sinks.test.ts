import { afterAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { startEmulator } from '../../emulator/index.ts';
import { createTestPki } from '../../emulator/tls.ts';
import { workDir, writeOutputs } from '../../e2e/support.ts';
import { bulkReceiver, hecReceiver } from '../../receivers/http-receivers.ts';
import { rsyslogUnavailable, startRsyslog } from '../../receivers/rsyslog.ts';

const root = resolve(import.meta.dirname, '../../..');
const pki = await createTestPki();
const emulator = await startEmulator({ pki, seed: 3, days: 1 });
const dir = await workDir();
const outputs = await writeOutputs(emulator, dir);
const hec = await hecReceiver('good-hec-token-0001');
const es = await bulkReceiver({ security: { apiKey: 'es-key-0001-abcdef', writable: ['o365-audit'] } });
afterAll(async () => { await hec.close(); await es.close(); await emulator.stop(); });

interface Result { code: number; stdout: string; stderr: string }
function cli(args: string[], env: Record<string, string> = {}): Promise<Result> {
  return new Promise((resolveResult) => {
    execFile(process.execPath, [join(root, 'connector/bin.mjs'), ...args, '--outputs', outputs], { env: { ...process.env, NODE_EXTRA_CA_CERTS: emulator.caFile, O365_LOG_LEVEL: 'error', ...env } }, (error, stdout, stderr) => {
      resolveResult({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

const hecSpec = (token: string) => `splunk-hec://127.0.0.1:${new URL(hec.url).port}?tls=0&insecure=1&tokenEnv=HEC_TOKEN&index=o365`;
const esSpec = (index: string) => `elasticsearch://127.0.0.1:${new URL(es.url).port}/${index}?tls=0&insecure=1&apiKeyEnv=ES_KEY`;

describe('test: the whole path, every sink checked as run will use it', () => {
  it('says ok for each sink that works, one line each, after the API check', async () => {
    const file = join(dir, 'out', 'audit.ndjson');
    const result = await cli(['test', '--sink', `file:${file}`, '--sink', hecSpec('good'), '--sink', esSpec('o365-audit')], { HEC_TOKEN: 'good-hec-token-0001', ES_KEY: 'es-key-0001-abcdef' });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const lines = result.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^Connection successful /);
    expect(lines[1]).toBe('Content types the app may read: Audit.AzureActiveDirectory, Audit.Exchange, Audit.SharePoint, Audit.General, DLP.All');
    expect(lines[2]).toMatch(/^Microsoft Graph \(127\.0\.0\.1:\d+\): ServiceHealth\.Read\.All granted, ServiceMessage\.Read\.All granted; /);
    expect(lines[3]).toBe('History beyond 7 days: AuditLogsQuery.Read.All granted (the audit search reads what the API no longer lists)');
    expect(lines.slice(4)).toEqual([
      `Sink file:${file}: ok (appendable and fsync-able)`,
      `Sink splunk-hec://127.0.0.1:${new URL(hec.url).port}: ok (token accepted (index o365 is checked by the first batch: HEC checks indexes only with events))`,
      `Sink elasticsearch://127.0.0.1:${new URL(es.url).port}/o365-audit: ok (credentials accepted, may create documents in o365-audit)`,
    ]);
    expect(hec.events).toHaveLength(0); // nothing was written to find that out
    expect(es.documents.size).toBe(0);
  });

  it('names what fails and the fix, one line per sink, and exits 6', async () => {
    const notADirectory = join(dir, 'a-file');
    await writeFile(notADirectory, 'x');
    const result = await cli(['test', '--sink', `file:${join(notADirectory, 'audit.ndjson')}`, '--sink', hecSpec('bad'), '--sink', esSpec('other-index'), '--sink', esSpec('o365-audit')], { HEC_TOKEN: 'wrong-token-000000', ES_KEY: 'es-key-0001-abcdef' });
    expect(result.code).toBe(6);
    const errors = result.stderr.trim().split('\n');
    expect(errors).toEqual([
      `error: sink file:${join(notADirectory, 'audit.ndjson')}: SINK_UNWRITABLE: ${join(notADirectory, 'audit.ndjson')} cannot be appended to and synced: a parent of it is a file, not a directory. Fix: give a path in a directory the connector's user may write, on a writable file system`,
      expect.stringMatching(/^error: sink splunk-hec:\/\/127\.0\.0\.1:\d+: HEC4: Splunk HEC splunk-hec:\/\/127\.0\.0\.1:\d+: the HEC token is invalid \(HTTP 403\)\. Fix: check the token named by tokenEnv$/),
      `error: sink elasticsearch://127.0.0.1:${new URL(es.url).port}/other-index: ES_FORBIDDEN: elasticsearch://127.0.0.1:${new URL(es.url).port}/other-index: these credentials may not create documents in other-index: no create_doc privilege. Fix: grant the role of this API key or user the create_doc (or write) privilege on other-index`,
    ]);
    expect(result.stdout).toContain(`Sink elasticsearch://127.0.0.1:${new URL(es.url).port}/o365-audit: ok`);
    expect(`${result.stdout}${result.stderr}`).not.toContain('wrong-token-000000');
  });

  it.skipIf(rsyslogUnavailable() !== undefined)(`checks syslog over TLS against the configured CA (a real rsyslog)${rsyslogUnavailable() ? ` (skipped: ${rsyslogUnavailable()})` : ''}`, { timeout: 60_000 }, async () => {
    const rsyslog = await startRsyslog(await workDir(), pki);
    try {
      const other = await createTestPki();
      const good = `syslog+tls://127.0.0.1:${rsyslog.tlsPort}?ca=${pki.caFile}`;
      const wrongCa = `syslog+tls://127.0.0.1:${rsyslog.tlsPort}?ca=${other.caFile}`;
      const result = await cli(['test', '--sink', good, '--sink', wrongCa]);
      expect(result.code).toBe(6);
      expect(result.stdout).toContain(`Sink syslog+tls://127.0.0.1:${rsyslog.tlsPort}: ok (reachable, TLS certificate verified)`);
      expect(result.stderr.trim()).toMatch(/^error: sink syslog\+tls:\/\/127\.0\.0\.1:\d+: \S+: .*certificate.*Fix: /);
    } finally {
      await rsyslog.stop();
    }
  });

  it('run stops at start, before any batch, when a sink can never accept (a refused token): exit 6 with the fix', async () => {
    const result = await cli(['run', '--once', '--since', '1h', '--content-types', 'Audit.General', '--state', join(dir, 'state-bad-token'), '--sink', hecSpec('bad')], { HEC_TOKEN: 'wrong-token-000000' });
    expect(result.code).toBe(6);
    expect(result.stderr.trim()).toMatch(/^error: HEC4: sink splunk-hec:\/\/127\.0\.0\.1:\d+: Splunk HEC .*the HEC token is invalid \(HTTP 403\)\. Fix: check the token named by tokenEnv$/);
    expect(hec.events).toHaveLength(0);
  });
});
