import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { request } from 'undici';
import { buildStatusReport } from '../../connector/report/status-report.ts';
import { startEmulator } from '../emulator/index.ts';
import { connectorOutputs } from '../emulator/connector-config.ts';
import { workDir, writeOutputs } from './support.ts';

const root = resolve(import.meta.dirname, '../..');
const frozen = new Date(Math.floor(Date.now() / 60_000) * 60_000);
// Tokens that live a minute: msal asks for a new one on every use, so readiness follows the secret at once.
const emulator = await startEmulator({
  now: () => frozen, quotaPerMinute: 1_000_000, seed: 12, days: 1, blobIntervalMinutes: 60, recordsPerBlob: 15, duplicateRate: 0.2,
  enabledContentTypes: ['Audit.Exchange', 'Audit.General'], tokenLifetimeSeconds: 60,
});
afterAll(() => emulator.stop());

async function get(address: string, path: string): Promise<{ status: number; text: string }> {
  const answer = await request(`http://${address}${path}`);
  return { status: answer.statusCode, text: await answer.body.text() };
}

/** `name{labels} value` lines of a Prometheus text exposition, summed by name. */
function totals(text: string): Map<string, number> {
  const sums = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^(o365_\w+)(?:\{[^}]*\})? (\S+)$/.exec(line);
    if (match) sums.set(match[1]!, (sums.get(match[1]!) ?? 0) + Number(match[2]));
  }
  return sums;
}

async function until<T>(probe: () => Promise<T | undefined>, deadlineMs = 60_000): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('run --listen: metrics and health over HTTP', () => {
  it('serves counters that match the ground truth and status, and turns unready while the secret is refused', { timeout: 120_000 }, async () => {
    const dir = await workDir();
    const outputs = await writeOutputs(emulator, dir);
    const state = join(dir, 'state');
    const child = spawn(join(root, 'bin/o365-connector'), ['run', '--outputs', outputs, '--state', state, '--sink', `file:${join(dir, 'audit.ndjson')}`, '--listen', '127.0.0.1:0', '--poll-interval', '1', '--content-types', 'Audit.Exchange,Audit.General'], {
      env: { ...process.env, NODE_EXTRA_CA_CERTS: emulator.caFile, O365_LOG_LEVEL: 'info' }, stdio: ['ignore', 'ignore', 'pipe'],
    });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    try {
      const address = await new Promise<string>((resolveAddress) => {
        createInterface({ input: child.stderr! }).on('line', (line) => {
          const entry = JSON.parse(line) as { component?: string; address?: string };
          if (entry.component === 'health' && entry.address) resolveAddress(entry.address);
        });
      });
      expect(await get(address, '/livez')).toEqual({ status: 200, text: 'ok\n' });
      const truth = emulator.groundTruth('Audit.Exchange').size + emulator.groundTruth('Audit.General').size;
      let last = '';
      const metrics = await until(async () => {
        last = (await get(address, '/metrics')).text;
        return totals(last).get('o365_records_delivered_total') === truth ? last : undefined;
      }).catch((error: unknown) => { throw new Error(`${(error as Error).message}: truth ${truth}, metrics ${[...totals(last)].join(' ')}`); });
      const sums = totals(metrics);
      const report = await buildStatusReport({ stateDir: state });
      expect(sums.get('o365_records_duplicate_total')).toBe(report.contentTypes.reduce((n, r) => n + r.duplicatesDropped, 0));
      expect(sums.get('o365_blobs_delivered_total')).toBe(report.contentTypes.reduce((n, r) => n + r.blobsDelivered, 0));
      expect(sums.get('o365_collection_active')).toBe(2);
      // Counted in the process: a clean first run fetched each blob it listed once, and delivered it.
      expect(sums.get('o365_blobs_fetched_total')).toBe(sums.get('o365_blobs_delivered_total'));
      expect(sums.get('o365_blobs_listed_total')).toBe(sums.get('o365_blobs_fetched_total'));
      expect(metrics).toMatch(/^o365_sink_batch_seconds_count\{sink="file:[^"]+"\} [1-9]\d*$/m);
      expect(metrics).toMatch(new RegExp(`^o365_records_delivered_total\\{tenant="${emulator.tenantId}",content_type="Audit.Exchange",sink="file:[^"]+"\\} ${emulator.groundTruth('Audit.Exchange').size}$`, 'm'));
      expect(metrics).toMatch(/^o365_api_requests_total\{tenant="[^"]+",operation="audit",code="200"\} \d+$/m);
      expect(metrics).toMatch(/^o365_client_secret_expiry_timestamp_seconds\{tenant="[^"]+"\} \d+/m);
      expect(metrics).toMatch(/^process_resident_memory_bytes \d+/m);
      expect(await get(address, '/readyz')).toEqual({ status: 200, text: 'ready\n' });

      // The secret stops working: unready, saying why. Rotated into the outputs file: ready again, no restart.
      emulator.expireSecrets();
      const unready = await until(async () => { const answer = await get(address, "/readyz"); return answer.status === 503 ? answer : undefined; });
      expect(unready.text).toMatch(/^no token: error: AADSTS7000222: /);
      expect(unready.text).not.toContain(emulator.clientSecret);
      const rotated = emulator.rotateSecret();
      await writeFile(outputs, JSON.stringify({ ...connectorOutputs(emulator), clientSecret: rotated }), { mode: 0o600 });
      await until(async () => ((await get(address, '/readyz')).status === 200 ? true : undefined));
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });
});
