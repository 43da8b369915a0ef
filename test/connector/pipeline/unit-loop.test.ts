import { describe, expect, it, vi } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { defaultRunSettings } from '../../../connector/config/settings.ts';
import { ConnectorError } from '../../../connector/core/errors.ts';
import type { SinkBatch, SinkCallOptions, SinkPosition } from '../../../connector/core/records.ts';
import { Telemetry } from '../../../connector/observe/telemetry.ts';
import { openDelivery } from '../../../connector/pipeline/delivery.ts';
import { UnitLoop } from '../../../connector/pipeline/unit-loop.ts';
import type { Sink } from '../../../connector/sinks/sink.ts';
import type { Acknowledgement, Source, SourceContext, SourceItem, SourcePass } from '../../../connector/sources/source.ts';
import { openStateStore } from '../state/open-store.ts';
import type { StateStore } from '../../../connector/state/store.ts';
import { quietLogger, workDir } from '../../e2e/support.ts';
import { auditRecord } from './fake-activity-api.ts';

const contentType = 'Audit.General';
const start = Date.parse('2026-11-25T10:00:00Z');
const reached = Date.parse('2026-11-25T11:00:00Z');

class MemorySink implements Sink {
  readonly name = 'memory';
  readonly received: string[] = [];
  /** Holds the next write until released. */
  gate: Promise<void> | undefined;
  writing = false;
  /** Records it can never take (by Id): set aside instead. */
  tooLarge = new Set<string>();
  async open(): Promise<void> {}
  async write(batch: SinkBatch, options: SinkCallOptions = {}): Promise<SinkPosition> {
    this.writing = true;
    await this.gate;
    for (const record of batch.records) if (this.tooLarge.has(record.id!)) options.setAside?.(record, 'too large for memory');
    this.received.push(...batch.records.filter((r) => !this.tooLarge.has(r.id!)).map((r) => r.id!));
    return this.received.length;
  }
  async close(): Promise<void> {}
}

/** One scripted pass: its items in order, then (unless it fails first) the checkpoint `to`. */
interface Script {
  readonly ids: string[][];
  readonly to: number;
  /** Thrown after the items, instead of ending. */
  readonly failure?: Error;
  /** After the items, waits for the pass's stop instead of ending. */
  readonly hold?: true;
}

class ScriptedPass implements SourcePass {
  readonly listedFrom = start;
  readonly errors = [];
  checkpoint: number | undefined;
  readonly #script: Script;
  readonly #context: SourceContext;

  constructor(script: Script, checkpoint: number | undefined, context: SourceContext) {
    this.#script = script;
    this.checkpoint = checkpoint;
    this.#context = context;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<SourceItem> {
    for (const ids of this.#script.ids) {
      const records = ids.map((id) => auditRecord(id));
      yield { records, bytes: records.reduce((n, r) => n + r.bytes.length, 0), cut: true };
    }
    if (this.#script.failure) throw this.#script.failure;
    if (this.#script.hold) {
      const { signal } = this.#context;
      await new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason), { once: true }));
    }
  }

  acknowledge(): Acknowledgement {
    return { records: [], counts: {}, change: () => ({ contentType, at: this.#context.now().toISOString() }) };
  }

  async end(): Promise<Acknowledgement> {
    return {
      records: [], counts: {},
      change: () => {
        this.checkpoint = this.#script.to;
        return { contentType, at: this.#context.now().toISOString(), checkpoint: new Date(this.#script.to).toISOString(), coveredFrom: new Date(start).toISOString(), lastError: null };
      },
    };
  }
}

/** A source whose live passes follow `scripts`, one a pass. */
class ScriptedSource implements Source {
  readonly contentType = contentType;
  readonly #scripts: Script[];
  constructor(scripts: Script[]) {
    this.#scripts = scripts;
  }
  live(checkpoint: number | undefined, context: SourceContext): SourcePass {
    return new ScriptedPass(this.#scripts.shift()!, checkpoint, context);
  }
  sweep(): undefined {
    return undefined;
  }
}

async function loopOf(source: Source, options: { prepare?: (signal: AbortSignal) => Promise<void>; explain?: (error: ConnectorError) => ConnectorError } = {}) {
  const dir = join(await workDir(), 'state');
  const store: StateStore = await openStateStore(dir, { lockWaitMs: 0 });
  const sink = new MemorySink();
  const { logger } = quietLogger();
  const delivery = await openDelivery({ store, sinks: [sink], logger });
  const loop = new UnitLoop({ source, store, cursor: undefined, since: new Date(start), logger, ...options }, delivery, { telemetry: new Telemetry(), settings: { ...defaultRunSettings, batchMaxWaitMs: 0 }, now: () => new Date(reached) });
  const cursor = async () => (await store.cursors()).get(contentType);
  return { loop, sink, delivery, store, cursor, [Symbol.asyncDispose]: async () => { await delivery.close(); await store.close(); } };
}

/** Where the unit stands. */
function where(loop: UnitLoop) {
  return { checkpoint: loop.checkpoint, coveredFrom: loop.coveredFrom, pending: loop.pending.size, prepared: loop.prepared };
}

describe('UnitLoop', () => {
  it('holds the checkpoint after a failed pass, reports it in the summary and the state, and retries from there', async () => {
    await using unit = await loopOf(new ScriptedSource([
      { ids: [['r1']], to: reached, failure: new ConnectorError('AF50000', 'internal error', { retryable: true }) },
      { ids: [['r1', 'r2']], to: reached },
    ]));
    expect(await unit.loop.live()).toBe(true);
    expect(where(unit.loop)).toEqual({ checkpoint: undefined, coveredFrom: undefined, pending: 0, prepared: true });
    expect(unit.delivery.summary.errors.map((e) => e.code)).toEqual(['AF50000']);
    expect(unit.delivery.fatal?.code).toBe('AF50000');
    expect((await unit.cursor())?.lastError?.code).toBe('AF50000');
    expect((await unit.cursor())?.checkpoint).toBeUndefined();

    expect(await unit.loop.live()).toBe(true);
    expect(where(unit.loop)).toEqual({ checkpoint: reached, coveredFrom: start, pending: 0, prepared: true });
    expect(unit.sink.received).toEqual(['r1', 'r2']); // r1 was committed by the failed pass: not delivered again
    expect(unit.delivery.summary).toMatchObject({ records: 2, duplicates: 1 });
    expect((await unit.cursor())?.lastError).toBeUndefined();
  });

  it('reports a failure as the tenant\'s credential explains it, in the summary and in the state', async () => {
    const explain = (error: ConnectorError) => (error.code === 'AF10001' ? new ConnectorError('AF10001', 'the managed identity lacks ActivityFeed.Read', { fix: 'assign the roles to the identity' }) : error);
    await using unit = await loopOf(new ScriptedSource([{ ids: [], to: reached, failure: new ConnectorError('AF10001', 'the app\'s token lacks ActivityFeed.Read', { fix: 'grant admin consent' }) }]), { explain });
    expect(await unit.loop.live()).toBe(true);
    expect(unit.delivery.summary.errors.map((e) => e.message)).toEqual([expect.stringMatching(/the managed identity lacks ActivityFeed\.Read.*assign the roles to the identity/)]);
    expect((await unit.cursor())?.lastError?.message).toMatch(/the managed identity lacks ActivityFeed\.Read.*assign the roles to the identity/);
  });

  it('keeps a record a sink set aside from its batch in the tenant\'s dead letters, committed with the batch', async () => {
    await using unit = await loopOf(new ScriptedSource([{ ids: [['r1', 'r2', 'r3']], to: reached }]));
    unit.sink.tooLarge.add('r2');
    expect(await unit.loop.live()).toBe(true);
    expect(unit.sink.received).toEqual(['r1', 'r3']);
    expect((await unit.cursor())?.checkpoint).toBe(new Date(reached).toISOString());
    const kept = (await readFile(unit.store.deadLetters, 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(kept).toEqual([expect.objectContaining({ contentType, contentId: 'sink memory', index: 1, reason: 'record r2 not taken by memory: too large for memory', text: auditRecord('r2').bytes.toString() })]);
  });

  it('stays unprepared after a prepare that failed, and prepares again before the next pass', async () => {
    const prepare = vi.fn().mockRejectedValueOnce(new ConnectorError('AF20022', 'no subscription')).mockResolvedValue(undefined);
    await using unit = await loopOf(new ScriptedSource([{ ids: [['r1']], to: reached }]), { prepare });
    expect(await unit.loop.live()).toBe(true);
    expect(where(unit.loop)).toMatchObject({ checkpoint: undefined, prepared: false });
    expect(unit.sink.received).toEqual([]);
    expect(await unit.loop.live()).toBe(true);
    expect(prepare).toHaveBeenCalledTimes(2);
    expect(where(unit.loop)).toMatchObject({ checkpoint: reached, prepared: true });
    expect(unit.sink.received).toEqual(['r1']);
  });

  it('after a stop, commits the batch in flight, starts no other, and holds no record key', async () => {
    await using unit = await loopOf(new ScriptedSource([{ ids: [['r1'], ['r2']], to: reached, hold: true }]));
    let release!: () => void;
    unit.sink.gate = new Promise<void>((resolve) => { release = resolve; });
    const stop = new AbortController();
    const running = unit.loop.run(stop.signal);
    await vi.waitFor(() => expect(unit.sink.writing).toBe(true), { timeout: 5000 });
    stop.abort(new Error('stopped'));
    release();
    await running;
    expect(unit.sink.received).toEqual(['r1']);
    expect((await unit.cursor())?.recordsDelivered).toBe(1);
    expect(where(unit.loop)).toEqual({ checkpoint: undefined, coveredFrom: undefined, pending: 0, prepared: true });
    expect(await unit.loop.live(stop.signal)).toBe(false);
  });
});
