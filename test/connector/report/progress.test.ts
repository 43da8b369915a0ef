import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { ProgressDisplay } from '../../../connector/report/progress.ts';
import { startEmulator } from '../../emulator/index.ts';
import { workDir, writeOutputs } from '../../e2e/support.ts';

const root = resolve(import.meta.dirname, '../../..');
const minute = 60_000;

describe('progress lines on a terminal', () => {
  it('draws one line per content type (range, records, records/s, ETA) and redraws them in place', () => {
    let now = Date.parse('2026-12-01T12:00:00Z');
    const written: string[] = [];
    const display = new ProgressDisplay({ write: (text) => { written.push(text); return true; }, isTTY: true, columns: 140 }, ['Audit.Exchange', 'Audit.General'], { lagMs: 15 * minute, now: () => now });
    display.draw();
    expect(written.join('')).toMatch(/^Audit\.Exchange +starting +0 records +0\/s  -\nAudit\.General +starting/);
    const from = now - 3 * 24 * 60 * minute;
    display.update('Audit.Exchange', { records: 5000, checkpoint: from + 60 * minute, coveredFrom: from });
    display.draw();
    now += 10_000;
    display.update('Audit.Exchange', { records: 20_000, checkpoint: from + 6 * 60 * minute, coveredFrom: from });
    display.update('Audit.General', { records: 10, checkpoint: now - 15 * minute, coveredFrom: from });
    written.length = 0;
    display.draw();
    const [erase, ...rest] = written.join('').split('Audit.Exchange');
    expect(erase).toBe('\x1b[2F\x1b[J'); // back up over the two lines drawn before, and clear them
    const lines = `Audit.Exchange${rest.join('Audit.Exchange')}`.trimEnd().split('\n');
    // 5 hours of content in 10 s, with 66.75 hours to go: about 2 minutes.
    expect(lines[0]).toMatch(/^Audit\.Exchange +2026-11-28 12:00 → 2026-11-28 18:00 +8% +25,000 records +2,500\/s  ETA 2m$/);
    expect(lines[1]).toMatch(/^Audit\.General +2026-11-28 12:00 → 2026-12-01 11:45 100% +10 records +\d+\/s  caught up$/);
    written.length = 0;
    display.clear();
    expect(written).toEqual(['\x1b[2F\x1b[J']);
  });

  it('adds a line once the tenant has been throttled: the rate it asks now and the rate the service took', () => {
    const written: string[] = [];
    let rate: { perMinute: number; ceilingPerMinute: number; learnedPerMinute?: number; throttled: number; throttledNow: boolean } = { perMinute: 1900, ceilingPerMinute: 2000, throttled: 0, throttledNow: false };
    const display = new ProgressDisplay({ write: (text) => { written.push(text); return true; }, isTTY: true, columns: 140 }, ['Audit.Exchange'], { lagMs: 15 * minute, rate: () => rate });
    display.draw();
    expect(written.join('').trimEnd().split('\n')).toHaveLength(1); // never throttled: nothing to say
    rate = { perMinute: 80, ceilingPerMinute: 2000, learnedPerMinute: 100, throttled: 12, throttledNow: true };
    written.length = 0;
    display.draw();
    expect(written.join('').trimEnd().split('\n').at(-1)).toBe('throttled (AF429): asking 80 requests/min, the service took about 100/min; 12 refused call(s) repeated');
  });

  it('in a backfill, shows how far delivery has got and an ETA while the checkpoint has not moved yet (issue 23, 9)', () => {
    let now = Date.parse('2026-12-01T12:00:00Z');
    const written: string[] = [];
    const display = new ProgressDisplay({ write: (text) => { written.push(text); return true; }, isTTY: true, columns: 140 }, ['Audit.Exchange'], { lagMs: 15 * minute, now: () => now });
    const from = now - 7 * 24 * 60 * minute;
    // One pass lists the whole week: its checkpoint stays where it began until the pass ends; the blobs delivered move on.
    const frames: string[] = [];
    for (let step = 1; step <= 20; step += 1) {
      display.update('Audit.Exchange', { records: 1000, checkpoint: undefined, coveredFrom: from, reached: from + step * 8 * 60 * minute });
      now += 1000;
      written.length = 0;
      display.draw();
      frames.push(written.join('').replace(/^\x1b\[\d+F\x1b\[J/, '').trimEnd());
    }
    // Known in every frame but the first (one position gives no pace yet).
    expect(frames.filter((frame) => / ETA \d/.test(frame)).length).toBeGreaterThanOrEqual(19);
    // The position, not a window being listed: 20 × 8 hours in, 95 % of the week to go.
    expect(frames.at(-1)).toMatch(/^Audit\.Exchange +2026-11-24 12:00 → 2026-12-01 04:00 +95% +20,000 records +[\d,]+\/s  ETA \d+s$/);
  });

  const script = spawnSync('script', ['--version']).status === 0;
  it.skipIf(!script)('shows them when run has a terminal (a real pty, through script), ending caught up', { timeout: 60_000 }, async () => {
    const emulator = await startEmulator({ seed: 8, days: 1, blobIntervalMinutes: 30, recordsPerBlob: 20 });
    try {
      const dir = await workDir();
      const outputs = await writeOutputs(emulator, dir);
      const command = [join(root, 'bin/o365-connector'), 'run', '--once', '--outputs', outputs, '--state', join(dir, 'state'), '--sink', `file:${join(dir, 'audit.ndjson')}`, '--content-types', 'Audit.General', '--since', '1d'];
      // Not spawnSync: the stand-in answers from this process's event loop.
      const child = spawn('script', ['-qfec', command.map((part) => `'${part}'`).join(' '), '/dev/null'], { env: { ...process.env, NODE_EXTRA_CA_CERTS: emulator.caFile, O365_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'inherit'] });
      let output = '';
      child.stdout!.on('data', (chunk: Buffer) => { output += chunk.toString(); });
      expect(await new Promise((r) => child.once('exit', r))).toBe(0);
      const last = output.trimEnd().split(/\r?\n/).at(-1)!;
      expect(last).toMatch(/Audit\.General +\d{4}-\d\d-\d\d \d\d:\d\d → \d{4}-\d\d-\d\d \d\d:\d\d 100% +[\d,]+ records +[\d,]+\/s  caught up$/);
    } finally {
      await emulator.stop();
    }
  });
});
