import { afterEach, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { startEmulator, type Emulator } from '../emulator/index.ts';
import { createTestPki } from '../emulator/tls.ts';
import { runUnits } from '../connector/pipeline/run-units.ts';
import { FileSink } from '../../connector/sinks/file.ts';
import { openStateStore } from '../connector/state/open-store.ts';
import { buildStatusReport, formatStatusReport } from '../../connector/report/status-report.ts';
import { ConnectorError } from '../../connector/core/errors.ts';
import { connectGraph, connectTo, fileLines, quietLogger, workDir } from './support.ts';

const pki = await createTestPki();
const start = new Date('2026-11-20T12:00:00Z');
let clock = start.getTime();
const minute = 60_000;
const emulators: Emulator[] = [];
afterEach(async () => { await Promise.all(emulators.splice(0).map((e) => e.stop())); clock = start.getTime(); });

async function emulatorWith(options: Parameters<typeof startEmulator>[0] = {}) {
  // Quiet: no audit content, so that the sink holds service announcements only.
  const emulator = await startEmulator({ pki, now: () => new Date(clock), seed: 15, quiet: true, graphPageSize: 2, ...options });
  emulators.push(emulator);
  return emulator;
}

/** One `run --once --content-types ServiceHealth`, as a fresh process would: the store opened anew (a restart). */
async function collect(emulator: Emulator, dir: string, options: { logger?: ReturnType<typeof quietLogger>['logger']; settings?: Parameters<typeof runUnits>[0]['settings'] } = {}) {
  const { api, agent, telemetry } = connectTo(emulator);
  const quiet = quietLogger();
  const logger = options.logger ?? quiet.logger;
  const { graph } = connectGraph(emulator, agent, { logger });
  const store = await openStateStore(join(dir, 'state'), { lockWaitMs: 0 });
  try {
    return await runUnits({
      api, graph, contentTypes: ['ServiceHealth'], since: new Date(clock - 7 * 86_400_000), once: true, store,
      sinks: [new FileSink(join(dir, 'health.ndjson'))], telemetry, logger, now: () => new Date(clock), ...(options.settings ? { settings: options.settings } : {}),
    });
  } finally {
    await store.close();
    await agent.close();
  }
}

/** The delivered lines as `<id>@<lastModifiedDateTime>` keys, and each key's bytes. */
async function delivered(dir: string): Promise<Array<{ key: string; id: string; bytes: Buffer }>> {
  return (await fileLines(join(dir, 'health.ndjson'))).map((bytes) => {
    const item = JSON.parse(bytes.toString('utf8')) as { id: string; lastModifiedDateTime: string };
    return { key: `${item.id}@${new Date(item.lastModifiedDateTime).toISOString()}`, id: item.id, bytes };
  });
}

describe('service health from Microsoft Graph, end to end', () => {
  it('delivers every issue and message version once, byte for byte; an issue updated three times arrives three times more, never again, across restarts', async () => {
    const emulator = await emulatorWith();
    const dir = await workDir();
    const announcements = emulator.serviceAnnouncements;
    await collect(emulator, dir);
    // Issues and messages changed within --since, each current version once, as the bytes Graph served (pages of 2: nextLink followed).
    const current = [...announcements.issues.values(), ...announcements.messages.values()].map((item) => `${item.id}@${item.lastModifiedDateTime}`);
    let lines = await delivered(dir);
    expect(lines.map((line) => line.key).sort()).toEqual(current.sort());
    const exchange = [...announcements.issues.values()].find((issue) => issue.service === 'Exchange Online')!;

    for (let update = 1; update <= 3; update += 1) {
      clock += 20 * minute;
      announcements.updateIssue(exchange.id, new Date(clock));
      clock += minute;
      await collect(emulator, dir); // a restart each time: de-duplication comes from the store
    }
    clock += 5 * minute;
    await collect(emulator, dir); // nothing changed: nothing delivered
    lines = await delivered(dir);
    expect(lines.filter((line) => line.id === exchange.id)).toHaveLength(4);
    expect(new Set(lines.map((line) => line.key)).size).toBe(lines.length);
    for (const line of lines) expect(line.bytes.equals(announcements.versions.get(line.key)!.bytes)).toBe(true);
    const posts = lines.filter((line) => line.id === exchange.id).map((line) => (JSON.parse(line.bytes.toString()) as { posts: unknown[] }).posts.length);
    expect(posts).toEqual([1, 2, 3, 4]);

    // status: the unit, its checkpoint, and every service's health as sampled on the last poll.
    const report = await buildStatusReport({ stateDir: join(dir, 'state'), now: () => new Date(clock) });
    const row = report.contentTypes.find((r) => r.contentType === 'ServiceHealth')!;
    expect(row).toMatchObject({ health: 'Active', subscription: 'none (Microsoft Graph)', recordsDelivered: lines.length });
    expect(row.services?.services).toContainEqual({ service: 'Exchange Online', status: 'extendedRecovery' });
    expect(row.services?.services).toContainEqual({ service: 'Microsoft Purview', status: 'investigating' });
    expect(formatStatusReport(report)).toMatch(/ServiceHealth: 4 of 6 service\(s\) operational at .*; Exchange Online: extendedRecovery, Microsoft Purview: investigating/);
  });

  it('a version Graph shows only after the live pass went past its time (a change between two pages, a late stamp) is delivered by the sweep, once', async () => {
    const emulator = await emulatorWith();
    const dir = await workDir();
    const announcements = emulator.serviceAnnouncements;
    const settings = { overlapMinutes: 30 };
    await collect(emulator, dir, { settings });
    const exchange = [...announcements.issues.values()].find((issue) => issue.service === 'Exchange Online')!;
    // Two hours on, a version stamped an hour before the last checkpoint appears: the live pass (from the
    // checkpoint less 30 minutes) cannot see it; only listing again what is remembered can.
    const checkpointTime = clock;
    clock += 120 * minute;
    announcements.updateIssue(exchange.id, new Date(checkpointTime - 60 * minute));
    const late = `${exchange.id}@${new Date(checkpointTime - 60 * minute).toISOString()}`;
    await collect(emulator, dir, { settings });
    let lines = await delivered(dir);
    expect(lines.filter((line) => line.key === late)).toHaveLength(1);
    clock += 5 * minute;
    await collect(emulator, dir, { settings }); // and never again
    lines = await delivered(dir);
    expect(lines.filter((line) => line.key === late)).toHaveLength(1);
    expect(new Set(lines.map((line) => line.key)).size).toBe(lines.length);
  });

  it('honours Graph throttling: 429 with Retry-After is waited out and the pass completes', async () => {
    const emulator = await emulatorWith();
    const dir = await workDir();
    emulator.throttleGraph(2, 1);
    const { logger, lines } = quietLogger();
    const started = performance.now();
    const summary = await collect(emulator, dir, { logger });
    expect(summary.errors).toEqual([]);
    expect(performance.now() - started).toBeGreaterThanOrEqual(1900);
    // Two waits, said once: throttling without a budget to learn from is a warning at most once a minute.
    const retries = lines.map((line) => JSON.parse(line) as { msg: string; code?: string; delayMs?: number }).filter((line) => line.msg.startsWith('retrying Microsoft Graph call'));
    expect(retries.map((line) => [line.code, line.delayMs])).toEqual([['GRAPH_THROTTLED', 1000]]);
    expect(emulator.counters().throttled).toBe(2);
    expect((await delivered(dir)).length).toBe(emulator.serviceAnnouncements.issues.size + emulator.serviceAnnouncements.messages.size);
  });

  it('a missing Graph permission is one line naming it and its fix; what can be read is delivered, and the checkpoint holds', async () => {
    const emulator = await emulatorWith();
    const dir = await workDir();
    emulator.setGraphRoles(['ServiceHealth.Read.All']);
    const failure = await collect(emulator, dir).then(() => undefined, (error: unknown) => error as ConnectorError);
    expect(failure).toBeInstanceOf(ConnectorError);
    expect(failure!.code).toBe('GRAPH_FORBIDDEN');
    expect(failure!.toLine()).toMatch(/^GRAPH_FORBIDDEN: Microsoft Graph refused serviceAnnouncement\/messages: the app lacks ServiceMessage\.Read\.All .*Fix: grant the app the Microsoft Graph application permission ServiceMessage\.Read\.All with admin consent: pulumi config set o365-connector:serviceHealth true/);
    expect(failure!.toLine()).not.toContain('\n');
    // Issues were readable and are delivered; no message is.
    const lines = await delivered(dir);
    expect(lines.map((line) => line.id).sort()).toEqual([...emulator.serviceAnnouncements.issues.keys()].sort());
    const report = await buildStatusReport({ stateDir: join(dir, 'state'), now: () => new Date(clock) });
    const row = report.contentTypes.find((r) => r.contentType === 'ServiceHealth')!;
    expect(row.checkpoint).toBeUndefined();
    expect(row.lastError?.code).toBe('GRAPH_FORBIDDEN');

    // Granted: the next run delivers the messages, and the issues not again.
    emulator.setGraphRoles(['ServiceHealth.Read.All', 'ServiceMessage.Read.All']);
    clock += minute;
    await collect(emulator, dir);
    const after = await delivered(dir);
    expect(after.map((line) => line.id).sort()).toEqual([...emulator.serviceAnnouncements.issues.keys(), ...emulator.serviceAnnouncements.messages.keys()].sort());
  });
});
