import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { runUnits, type RunUnitsOptions } from './run-units.ts';
import { openStateStoreReadOnly } from '../../../connector/state/sqlite/store.ts';
import { openStateStore } from '../state/open-store.ts';
import type { StateStore } from '../../../connector/state/store.ts';
import type { Commit, CursorState } from '../../../connector/core/commit.ts';
import type { RunSettings } from '../../../connector/config/settings.ts';
import type { Sink } from '../../../connector/sinks/sink.ts';
import type { SinkBatch, SinkPosition } from '../../../connector/core/records.ts';
import { ConnectorError } from '../../../connector/core/errors.ts';
import { Telemetry } from '../../../connector/observe/telemetry.ts';
import { buildStatusReport } from '../../../connector/report/status-report.ts';
import { quietLogger, workDir } from '../../e2e/support.ts';
import { FakeActivityApi, auditRecord } from './fake-activity-api.ts';
import { contentRecords } from '../../../connector/sources/activity-api/content-records.ts';
import { FileSink } from '../../../connector/sinks/file.ts';
import { readFile } from 'node:fs/promises';

const minute = 60_000;
const hour = 60 * minute;
const day = 24 * hour;
const now = Date.parse('2026-11-25T12:00:00Z');

class MemorySink implements Sink {
  readonly name: string;
  readonly received: string[] = [];
  readonly batchSizes: number[] = [];
  failuresLeft: number;
  constructor(name: string, failures = 0) {
    this.name = name;
    this.failuresLeft = failures;
  }
  async open(): Promise<void> {}
  async write(batch: SinkBatch): Promise<SinkPosition> {
    if (this.failuresLeft > 0) {
      this.failuresLeft -= 1;
      throw new ConnectorError('ECONNREFUSED', `${this.name} is down`, { retryable: true });
    }
    this.received.push(...batch.records.map((r) => r.id!));
    this.batchSizes.push(batch.records.length);
    return this.received.length;
  }
  async close(): Promise<void> {}
}

/** The real store, watched: every commit is kept for the test to check, with the records counted so far. */
class WatchedStore implements StateStore {
  readonly commits: Array<Commit & { recordsSoFar: number }> = [];
  readonly inner: StateStore;
  onCommit: ((commit: Commit & { recordsSoFar: number }) => void) | undefined;
  #records = 0;
  constructor(inner: StateStore) { this.inner = inner; }
  get location() { return this.inner.location; }
  get deadLetters() { return this.inner.deadLetters; }
  cursors() { return this.inner.cursors(); }
  sinkPositions() { return this.inner.sinkPositions(); }
  deliveredBlobs(...args: Parameters<StateStore['deliveredBlobs']>) { return this.inner.deliveredBlobs(...args); }
  seenRecords(...args: Parameters<StateStore['seenRecords']>) { return this.inner.seenRecords(...args); }
  async commit(commit: Commit) {
    this.#records += commit.records ?? 0;
    const seen = { ...structuredClone(commit), recordsSoFar: this.#records };
    this.onCommit?.(seen);
    this.commits.push(seen);
    await this.inner.commit(commit);
  }
  close() { return this.inner.close(); }
}

const fast: Partial<RunSettings> = { batchMaxRecords: 4, batchMaxWaitMs: 0 };

async function run(api: Feed, dir: string, sinks: Sink[], extra: Partial<RunUnitsOptions> = {}, onCommit?: WatchedStore['onCommit']) {
  const store = new WatchedStore(await openStateStore(join(dir, 'state'), { lockWaitMs: 0 }));
  store.onCommit = onCommit;
  const { logger, lines } = quietLogger();
  const telemetry = new Telemetry();
  try {
    const summary = await runUnits({
      api, contentTypes: ['Audit.SharePoint'], since: new Date(now - 6 * hour), once: true, store, sinks, telemetry, logger,
      now: () => new Date(api.nowMs), sinkRetry: { baseDelayMs: 1, maxDelayMs: 2, maxNonRetryableAttempts: 3 },
      ...extra, settings: { ...fast, ...extra.settings },
    });
    return { summary, store, lines, telemetry };
  } finally {
    await store.close();
  }
}

async function cursorOf(dir: string): Promise<CursorState | undefined> {
  const store = await openStateStoreReadOnly(join(dir, 'state'));
  try {
    return (await store.cursors()).get('Audit.SharePoint');
  } finally {
    await store.close();
  }
}

class Feed extends FakeActivityApi {
  nowMs = now;
  constructor() { super(() => this.nowMs); }
}
const feed = () => new Feed();

const counts = (ids: string[]) => ids.reduce((m, id) => m.set(id, (m.get(id) ?? 0) + 1), new Map<string, number>());

describe('runUnits', () => {
  it('delivers every record once when the same Id comes in several blobs, within a run and after a restart', async () => {
    const api = feed();
    api.addBlob('Audit.SharePoint', 'b1', now - 5 * hour, ['r1', 'r2', 'r3']);
    api.addBlob('Audit.SharePoint', 'b2', now - 4 * hour, ['r3', 'r4', 'r4']);
    const dir = await workDir();
    const sink = new MemorySink('memory');
    const first = await run(api, dir, [sink]);
    expect(first.summary.duplicates).toBe(2);
    api.nowMs += hour;
    api.addBlob('Audit.SharePoint', 'b3', now + 10 * minute, ['r2', 'r5']); // repeats a record of the first run
    await run(api, dir, [sink]);
    expect([...counts(sink.received)].sort()).toEqual([['r1', 1], ['r2', 1], ['r3', 1], ['r4', 1], ['r5', 1]]);
  });

  it('moves the checkpoint only after every sink acknowledged every record before it (fan-out, one sink failing)', async () => {
    const api = feed();
    for (let i = 0; i < 8; i += 1) api.addBlob('Audit.SharePoint', `b${i}`, now - 5 * hour + i * 20 * minute, [`r${i}a`, `r${i}b`, `r${i}c`]);
    const dir = await workDir();
    const steady = new MemorySink('steady');
    const flaky = new MemorySink('flaky', 5);
    const violations: string[] = [];
    // Checked at the moment of each save: the checkpoint may only cover what both sinks already hold.
    await run(api, dir, [steady, flaky], {}, (commit) => {
      const covered = api.blobs.filter((b) => commit.checkpoint !== undefined && b.contentCreated < commit.checkpoint);
      for (const blob of covered) for (const record of blob.records) {
        if (!steady.received.includes(record.id!) || !flaky.received.includes(record.id!)) violations.push(`${commit.checkpoint} covers ${record.id}`);
      }
      if (commit.recordsSoFar > flaky.received.length) violations.push(`${commit.recordsSoFar} counted, ${flaky.received.length} acknowledged`);
    });
    expect(flaky.failuresLeft).toBe(0);
    expect(violations).toEqual([]);
    expect(steady.received).toEqual(flaky.received);
    expect(new Set(flaky.received).size).toBe(24);
  });

  it('gives a blob\'s body back for reuse only after every sink acknowledged all its records, and each body once', async () => {
    const api = feed();
    for (let i = 0; i < 6; i += 1) api.addBlob('Audit.SharePoint', `b${i}`, now - 5 * hour + i * 20 * minute, [`r${i}a`, `r${i}b`, `r${i}c`]);
    const steady = new MemorySink('steady');
    const flaky = new MemorySink('flaky', 3);
    const early: string[] = [];
    api.onRelease = (contentId) => {
      for (const record of api.blobs.find((b) => b.contentId === contentId)!.records) {
        if (!steady.received.includes(record.id!) || !flaky.received.includes(record.id!)) early.push(`${contentId} before ${record.id}`);
      }
    };
    await run(api, await workDir(), [steady, flaky]);
    expect(early).toEqual([]);
    expect([...api.released].sort()).toEqual(['b0', 'b1', 'b2', 'b3', 'b4', 'b5']);
  });

  it('commits each sink\'s position with the checkpoint in the same commit', async () => {
    const api = feed();
    api.addBlob('Audit.SharePoint', 'b1', now - 3 * hour, ['r1', 'r2', 'r3', 'r4', 'r5', 'r6']);
    const dir = await workDir();
    const sink = new MemorySink('memory');
    const { store } = await run(api, dir, [sink]);
    for (const commit of store.commits) expect(commit.sinkPositions?.['memory'] ?? 0).toBe(commit.recordsSoFar);
    const reopened = await openStateStore(join(dir, 'state'), { lockWaitMs: 0 });
    expect(await reopened.sinkPositions()).toEqual({ memory: 6 });
    await reopened.close();
  });

  it('keeps batches within batchMaxRecords however large the blobs', async () => {
    const api = feed();
    api.addBlob('Audit.SharePoint', 'big', now - 3 * hour, Array.from({ length: 23 }, (_, i) => `r${i}`));
    const sink = new MemorySink('memory');
    await run(api, await workDir(), [sink], { settings: { batchMaxRecords: 5 } });
    expect(Math.max(...sink.batchSizes)).toBeLessThanOrEqual(5);
    expect(sink.received).toHaveLength(23);
  });

  it('holds the checkpoint before a blob that failed to fetch, delivers the rest, and fetches it on the next pass without duplicates', async () => {
    const api = feed();
    for (let i = 0; i < 5; i += 1) api.addBlob('Audit.SharePoint', `b${i}`, now - 5 * hour + i * 30 * minute, [`r${i}`]);
    api.failing.set('b1', 1);
    const dir = await workDir();
    const sink = new MemorySink('memory');
    const first = await run(api, dir, [sink]);
    expect(sink.received.sort()).toEqual(['r0', 'r2', 'r3', 'r4']);
    expect(first.summary.errors).toEqual([expect.objectContaining({ code: 'AF50000' })]);
    const held = (await cursorOf(dir))!;
    expect(held.checkpoint).toBe(api.blobs[1]!.contentCreated);
    expect(held.heldBlobs).toBe(1);
    expect((await buildStatusReport({ stateDir: join(dir, 'state'), now: () => new Date(now) })).overall).toBe('Degraded');
    api.nowMs += minute;
    await run(api, dir, [sink]);
    expect([...counts(sink.received).values()].every((n) => n === 1)).toBe(true);
    expect(sink.received.sort()).toEqual(['r0', 'r1', 'r2', 'r3', 'r4']);
    const after = (await cursorOf(dir))!;
    expect(after.lastError).toBeUndefined();
    expect(after.checkpoint).toBe(new Date(api.nowMs - 15 * minute).toISOString());
  });

  it('holds the checkpoint before a listed blob whose contentCreated cannot be read when that blob fails, instead of stepping over it', async () => {
    const api = feed();
    for (let i = 0; i < 4; i += 1) api.addBlob('Audit.SharePoint', `b${i}`, now - 5 * hour + i * hour, [`r${i}`]);
    const listContent = api.listContent.bind(api);
    const windowsOfGarbled: Array<{ start: number; end: number }> = [];
    api.listContent = async function* (contentType, window, options) {
      for await (const page of listContent(contentType, window, options)) {
        yield page.map((blob) => {
          if (blob.contentId !== 'b1') return blob;
          windowsOfGarbled.push({ start: window.start.getTime(), end: window.end.getTime() });
          return { ...blob, contentCreated: 'the 25th, around noon' };
        });
      }
    };
    api.failing.set('b1', 1);
    const dir = await workDir();
    const sink = new MemorySink('memory');
    const first = await run(api, dir, [sink]);
    expect(sink.received.sort()).toEqual(['r0', 'r2', 'r3']);
    expect(first.summary.errors).toEqual([expect.objectContaining({ code: 'AF50000' })]);
    const held = (await cursorOf(dir))!;
    expect(held.heldBlobs).toBe(1);
    // Placed at the start of the window that listed it: the service promises contentCreated within the window.
    expect(Date.parse(held.checkpoint!)).toBeLessThanOrEqual(Math.min(...windowsOfGarbled.map((w) => w.start)) + 0);
    api.nowMs += minute;
    await run(api, dir, [sink]);
    expect(sink.received.sort()).toEqual(['r0', 'r1', 'r2', 'r3']);
  });

  it('sets aside elements that are not audit records (to the dead-letter file, counted, logged with their blob), delivering the rest and moving on', async () => {
    const api = feed();
    api.addBlob('Audit.SharePoint', 'odd', now - 5 * hour, []);
    api.addBlob('Audit.SharePoint', 'after', now - 4 * hour, ['r9']);
    const deep = `{"Id":"deep","CreationTime":"2026-11-24T09:12:44","x":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    const elements = ['null', '5', '"a string"', '[1,2]', 'true', '{"NoId":1}', deep, auditRecord('r1').bytes.toString()];
    const fetchContent = api.fetchContent.bind(api);
    api.fetchContent = async (blob, options) => {
      if (blob.contentId !== 'odd') return fetchContent(blob, options);
      const body = Buffer.from(`[${elements.join(',')}]`);
      return { ...contentRecords(body), bytes: body.length };
    };
    const dir = await workDir();
    const sink = new MemorySink('memory');
    const file = join(dir, 'audit.ndjson');
    const { summary, lines } = await run(api, dir, [sink, new FileSink(file)]);
    expect(sink.received.sort()).toEqual(['deep', 'r1', 'r9']);
    const written = (await readFile(file, 'utf8')).split('\n').filter(Boolean);
    expect(written.sort()).toEqual([auditRecord('r1').bytes.toString(), auditRecord('r9').bytes.toString(), deep].sort());
    expect(summary.setAside).toBe(6);
    expect(summary.errors).toEqual([]);
    const deadLetters = (await readFile(join(dir, 'state', 'dead-letter.ndjson'), 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(deadLetters.map(({ contentType, contentId, index, reason, text }) => ({ contentType, contentId, index, reason, text }))).toEqual([
      { contentType: 'Audit.SharePoint', contentId: 'odd', index: 0, reason: 'not a JSON object', text: 'null' },
      { contentType: 'Audit.SharePoint', contentId: 'odd', index: 1, reason: 'not a JSON object', text: '5' },
      { contentType: 'Audit.SharePoint', contentId: 'odd', index: 2, reason: 'not a JSON object', text: '"a string"' },
      { contentType: 'Audit.SharePoint', contentId: 'odd', index: 3, reason: 'not a JSON object', text: '[1,2]' },
      { contentType: 'Audit.SharePoint', contentId: 'odd', index: 4, reason: 'not a JSON object', text: 'true' },
      { contentType: 'Audit.SharePoint', contentId: 'odd', index: 5, reason: 'no string Id', text: '{"NoId":1}' },
    ]);
    expect(lines.join('')).toMatch(/"contentId":"odd","setAside":6.*set aside to [^"]*\/state\/dead-letter\.ndjson;/);
    const cursor = (await cursorOf(dir))!;
    expect(cursor.heldBlobs ?? 0).toBe(0);
    expect(cursor.checkpoint).toBe(new Date(now - 15 * minute).toISOString());
  });

  it('sweeps the covered range: a blob listed days late is delivered once, counted with its lateness, and a record repeated days later is dropped', async () => {
    const api = feed();
    api.addBlob('Audit.SharePoint', 'on-time', now - 5 * day, ['r1', 'r2']);
    // contentCreated 4 days back, listable only after the first run: far behind every live pass's overlap by then.
    const late = api.addBlob('Audit.SharePoint', 'late', now - 4 * day, ['r3', 'r1'], now + 10 * minute);
    const dir = await workDir();
    const sink = new MemorySink('memory');
    await run(api, dir, [sink], { since: new Date(now - 6 * day) }); // the late blob is not listable yet
    expect(sink.received.sort()).toEqual(['r1', 'r2']);
    api.nowMs = now + 30 * minute; // past its listing time (it still is not in any live pass's range)
    const second = await run(api, dir, [sink]);
    expect(sink.received.sort()).toEqual(['r1', 'r2', 'r3']);
    expect(second.summary).toMatchObject({ late: 1, duplicates: 1 });
    const cursor = (await cursorOf(dir))!;
    expect(cursor).toMatchObject({ lateBlobs: 1, coveredFrom: new Date(now - 6 * day).toISOString() });
    expect(cursor.maxLatenessMs).toBe(api.nowMs - Date.parse(late.contentCreated));
    expect(Date.parse(cursor.lastSweepAt!)).toBe(api.nowMs);
    // A third run finds nothing new anywhere, and delivers nothing twice.
    api.nowMs += hour;
    const third = await run(api, dir, [sink]);
    expect(third.summary).toMatchObject({ records: 0, late: 0 });
    expect(sink.received).toHaveLength(3);
  });

  it('with emitHealth, writes health records into the sinks: content expired, content listed late, subscription disabled, throttled', async () => {
    const api = feed();
    api.addBlob('Audit.SharePoint', 'fine', now - 5 * hour, ['r1']);
    api.addBlob('Audit.SharePoint', 'gone', now - 4 * hour, ['r2']);
    api.expired.add('gone');
    const dir = await workDir();
    const bodies: Array<Record<string, unknown>> = [];
    const sink: Sink = { name: 'health', async open() {}, async close() {}, async write(batch) { bodies.push(...batch.records.map((r) => JSON.parse(r.bytes.toString()) as Record<string, unknown>)); return bodies.length; } };
    const first = await run(api, dir, [sink], { emitHealth: true });
    const health = () => bodies.filter((body) => body['RecordType'] === 'O365ConnectorHealth');
    expect(health()).toEqual([expect.objectContaining({ Event: 'ContentExpired', ContentType: 'Audit.SharePoint', ContentId: 'gone', Id: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/), CreationTime: new Date(now).toISOString().slice(0, 19) })]);
    expect(first.summary.records).toBe(1); // health records are not audit records
    expect((await cursorOf(dir))!.recordsDelivered).toBe(1);
    // A blob listed days late, found by the next run's sweep; then the subscription disabled by an administrator.
    api.addBlob('Audit.SharePoint', 'late', now - 5 * hour - 30 * minute, ['r3'], now + 5 * hour); // behind the next live pass's overlap
    api.nowMs = now + 5 * hour + minute;
    await run(api, dir, [sink], { emitHealth: true });
    expect(health().at(-1)).toMatchObject({ Event: 'LateContent', ContentId: 'late', LatenessSeconds: Math.round((api.nowMs - (now - 5.5 * hour)) / 1000) });
    const listContent = api.listContent.bind(api);
    api.listContent = async function* () { throw new ConnectorError('AF20023', 'The subscription was disabled by an administrator'); yield* listContent('Audit.SharePoint', { start: new Date(0), end: new Date(0) }); };
    api.nowMs += minute;
    await run(api, dir, [sink], { emitHealth: true }).catch(() => undefined);
    expect(health().at(-1)).toMatchObject({ Event: 'SubscriptionDisabled', Code: 'AF20023', WindowStart: expect.any(String), WindowEnd: expect.any(String) });
    // A pass during which the quota was spent: the client waited and repeated the calls (three AF429 answers), the pass went on.
    let throttledAnswers = 0;
    Object.defineProperty(api, 'rate', { get: () => ({ perMinute: 80, ceilingPerMinute: 2000, learnedPerMinute: 100, throttled: throttledAnswers, throttledNow: true }) });
    api.listContent = async function* (contentType, window, options) { throttledAnswers += 3; yield* listContent(contentType, window, options); };
    await run(api, dir, [sink], { emitHealth: true });
    expect(health().at(-1)).toMatchObject({ Event: 'Throttled', Code: 'AF429', ThrottledAnswers: 3, RequestsPerMinute: 80, LearnedPerMinute: 100 });
    // Without emitHealth, none.
    const quiet: string[] = [];
    const plain = feed();
    plain.addBlob('Audit.SharePoint', 'gone', now - 4 * hour, ['r2']);
    plain.expired.add('gone');
    await run(plain, await workDir(), [{ name: 'plain', async open() {}, async close() {}, async write(batch) { quiet.push(...batch.records.map((r) => r.bytes.toString())); return quiet.length; } }]);
    expect(quiet).toEqual([]);
  });

  it('never moves the checkpoint closer to now than the safety lag, and picks up a blob listed late inside the overlap', async () => {
    const api = feed();
    api.addBlob('Audit.SharePoint', 'early', now - 2 * hour, ['r1']);
    const late = api.addBlob('Audit.SharePoint', 'late', now - 50 * minute, ['r2'], now + 40 * minute); // listed 90 min after contentCreated
    const dir = await workDir();
    const sink = new MemorySink('memory');
    const { store } = await run(api, dir, [sink]);
    for (const commit of store.commits) if (commit.checkpoint) expect(Date.parse(commit.checkpoint)).toBeLessThanOrEqual(now - 15 * minute);
    expect(Date.parse((await cursorOf(dir))!.checkpoint!)).toBeGreaterThan(Date.parse(late.contentCreated)); // the checkpoint moved past it
    expect(store.commits.some((commit) => commit.checkpoint !== undefined)).toBe(true);
    expect(sink.received).toEqual(['r1']);
    api.nowMs = now + 45 * minute;
    await run(api, dir, [sink]);
    expect(sink.received).toEqual(['r1', 'r2']);
  });

  it('holds a blob larger than --max-blob-bytes, names it in status, and delivers the rest', async () => {
    const api = feed();
    api.addBlob('Audit.SharePoint', 'fine-1', now - 4 * hour, ['r1']);
    api.addBlob('Audit.SharePoint', 'huge', now - 3 * hour, ['r2']);
    api.addBlob('Audit.SharePoint', 'fine-2', now - 2 * hour, ['r3']);
    const fetchContent = api.fetchContent.bind(api);
    api.fetchContent = async (blob, options) => {
      if (blob.contentId !== 'huge') return fetchContent(blob, options);
      throw new ConnectorError('BLOB_TOO_LARGE', `content huge of Audit.SharePoint: the body announces 524288000 bytes, more than 67108864 (--max-blob-bytes)`, { fix: 'raise --max-blob-bytes if the blob is genuine' });
    };
    const dir = await workDir();
    const sink = new MemorySink('memory');
    const { summary } = await run(api, dir, [sink]);
    expect(sink.received.sort()).toEqual(['r1', 'r3']);
    expect(summary.errors).toEqual([expect.objectContaining({ code: 'BLOB_TOO_LARGE' })]);
    const cursor = (await cursorOf(dir))!;
    expect(cursor.heldBlobs).toBe(1);
    expect(cursor.checkpoint).toBe(api.blobs[1]!.contentCreated);
    const report = await buildStatusReport({ stateDir: join(dir, 'state'), now: () => new Date(now) });
    expect(report.overall).toBe('Degraded');
    expect(report.contentTypes[0]!.lastError?.message).toMatch(/^BLOB_TOO_LARGE: content huge of Audit\.SharePoint/);
  });

  it('counts expired content, logs its contentId, records it in state and reports it, never silently', async () => {
    const api = feed();
    api.addBlob('Audit.SharePoint', 'gone', now - 4 * hour, ['r1']);
    api.addBlob('Audit.SharePoint', 'fine', now - 3 * hour, ['r2']);
    api.expired.add('gone');
    const dir = await workDir();
    const sink = new MemorySink('memory');
    const { summary, lines, telemetry } = await run(api, dir, [sink]);
    expect(summary.expired).toBe(1);
    expect(sink.received).toEqual(['r2']);
    expect(lines.filter((l) => l.includes('AF20051') && l.includes('gone'))).toHaveLength(1);
    expect(telemetry.snapshot().find((c) => c.name === 'collector')?.errorsByCode['AF20051']).toBe(1);
    const state = (await cursorOf(dir))!;
    expect(state.expiredCount).toBe(1);
    expect(state.expired.map((e) => e.contentId)).toEqual(['gone']);
    const report = await buildStatusReport({ stateDir: join(dir, 'state'), now: () => new Date(now) });
    expect(report.overall).toBe('Degraded');
    expect(report.contentTypes[0]!.lastExpired.map((e) => e.contentId)).toEqual(['gone']);
  });

  it('starts a subscription that is missing (AF20022) and lists again', async () => {
    const api = feed();
    api.subscribed.clear();
    api.addBlob('Audit.SharePoint', 'b1', now - 2 * hour, ['r1']);
    const sink = new MemorySink('memory');
    await run(api, await workDir(), [sink]);
    expect(api.subscribed.has('Audit.SharePoint')).toBe(true);
    expect(sink.received).toEqual(['r1']);
  });

  it('resumes from its checkpoint and ignores since on later runs, listing only the overlap again', async () => {
    const api = feed();
    api.addBlob('Audit.SharePoint', 'b1', now - 5 * hour, ['r1']);
    const dir = await workDir();
    await run(api, dir, [new MemorySink('memory')]);
    api.listed.length = 0;
    api.nowMs += 10 * minute;
    await run(api, dir, [new MemorySink('memory')], { since: new Date(now - 6 * 24 * hour) });
    // The live pass lists the overlap again (the default, 4 hours, behind the checkpoint); then the sweep lists the
    // rest of what the state covers, from the first run's since (not this run's) to where live passes list from
    // now on (the checkpoint it just moved, less the overlap), for blobs listed late.
    expect(api.listed.map((w) => [w.start.getTime(), w.end.getTime()])).toEqual([
      [now - 15 * minute - 4 * hour, now + 10 * minute],
      [now - 6 * hour, now + 10 * minute - 15 * minute - 4 * hour],
    ]);
  });

  it('stops on the abort signal after the batch in flight and saves its state', async () => {
    const api = feed();
    for (let i = 0; i < 6; i += 1) api.addBlob('Audit.SharePoint', `b${i}`, now - 5 * hour + i * 10 * minute, [`r${i}`]);
    const controller = new AbortController();
    const sink = new MemorySink('memory');
    const slow: Sink = {
      name: 'slow', async open() {}, async close() {},
      async write(batch) { if (!controller.signal.aborted) controller.abort(new Error('SIGTERM')); return sink.write(batch); },
    };
    const dir = await workDir();
    const stopped = await run(api, dir, [slow], { once: false, abortSignal: controller.signal, settings: { batchMaxRecords: 1 } });
    const state = (await cursorOf(dir))!;
    expect(sink.received).toHaveLength(1);
    expect(state.recordsDelivered).toBe(1);
    // The run's summary counts what the interrupted pass committed (it used to say 0).
    expect(stopped.summary).toMatchObject({ records: 1, blobs: 1 });
    // Where coverage began is kept from the first commit: the sweeps of later runs look back to the first since.
    expect(state.coveredFrom).toBe(new Date(now - 6 * hour).toISOString());
    api.nowMs += minute;
    await run(api, dir, [sink]);
    expect(sink.received.sort()).toEqual(['r0', 'r1', 'r2', 'r3', 'r4', 'r5']);
  });

  it('ends the run when a sink refuses a batch for a reason retrying cannot fix, committing nothing of it', async () => {
    const api = feed();
    api.addBlob('Audit.SharePoint', 'b1', now - 2 * hour, ['r1']);
    const refusing: Sink = {
      name: 'hec', async open() {}, async close() {},
      async write() { throw new ConnectorError('HEC_TOKEN', 'Splunk HEC refused the token', { fix: 'check the HEC token', retryable: false }); },
    };
    const dir = await workDir();
    await expect(run(api, dir, [refusing])).rejects.toThrow(/refused the same batch 3 times/);
    expect((await cursorOf(dir))?.recordsDelivered ?? 0).toBe(0);
  });
});
