import { describe, expect, it } from 'vitest';
import { UnitScheduler } from '../../../connector/run/scheduler.ts';
import { type UnitClaims, type UnitHolder } from '../../../connector/state/store.ts';
import { unitName, type UnitKey } from '../../../connector/core/commit.ts';
import { createLogger } from '../../../connector/observe/log.ts';

/** The database's side of claims, in memory: what PostgreSQL's advisory locks do for the real store. */
class ClaimServer {
  readonly holders = new Map<string, string>();
  readonly sessions = new Set<string>();
  readonly #lost = new Map<string, Array<(reason: Error) => void>>();

  claims(worker: string): UnitClaims {
    this.sessions.add(worker);
    const tryClaim = async (unit: UnitKey) => {
      if (!this.sessions.has(worker)) throw new Error('session gone');
      const holder = this.holders.get(unitName(unit));
      if (holder !== undefined && holder !== worker) return false;
      this.holders.set(unitName(unit), worker);
      return true;
    };
    return {
      tryClaimSome: async (units, max) => {
        const taken: UnitKey[] = [];
        for (const unit of units) {
          if (taken.length >= max) break;
          if (await tryClaim(unit)) taken.push(unit);
        }
        return taken;
      },
      release: async (unit) => {
        if (this.holders.get(unitName(unit)) === worker) this.holders.delete(unitName(unit));
      },
      workers: async () => this.sessions.size,
      holders: async (): Promise<UnitHolder[]> => [],
      onLost: (listener) => this.#lost.set(worker, [...(this.#lost.get(worker) ?? []), listener]),
      reconnect: async () => {
        if (this.down.has(worker)) throw new Error('unreachable');
        this.sessions.add(worker);
      },
    };
  }

  readonly down = new Set<string>();

  /** The worker's session ends (killed, or its connection dropped): the server frees its units. */
  endSession(worker: string): void {
    this.sessions.delete(worker);
    for (const [unit, holder] of this.holders) if (holder === worker) this.holders.delete(unit);
    for (const listener of this.#lost.get(worker) ?? []) listener(new Error('connection terminated'));
  }

  count(worker: string): number {
    return [...this.holders.values()].filter((holder) => holder === worker).length;
  }
}

const units = (tenants: number): UnitKey[] => Array.from({ length: tenants }, (_, t) => [
  { tenant: `tenant-${t}`, contentType: 'Audit.Exchange' as const },
  { tenant: `tenant-${t}`, contentType: 'Audit.SharePoint' as const },
]).flat();

interface Worker {
  readonly name: string;
  readonly scheduler: UnitScheduler;
  readonly stop: AbortController;
  readonly done: Promise<void>;
  /** Units collecting in this worker now, by name. */
  readonly collecting: Set<string>;
  readonly starts: string[];
}

function startWorker(server: ClaimServer, name: string, desired: () => Array<{ unit: UnitKey; generation: number }>, options: { once?: boolean; tickMs?: number } = {}): Worker {
  const collecting = new Set<string>();
  const starts: string[] = [];
  const scheduler = new UnitScheduler({
    claims: server.claims(name), logger: createLogger({ level: 'silent' }), workerName: name, tickMs: 10, desired, ...options,
    collect: async (unit, signal) => {
      // Exclusivity as the pipeline sees it: no unit collects in two workers at once.
      expect(server.holders.get(unitName(unit))).toBe(name);
      collecting.add(unitName(unit));
      starts.push(unitName(unit));
      if (options.once) await new Promise((resolve) => setTimeout(resolve, 5));
      else await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
      collecting.delete(unitName(unit));
    },
  });
  const stop = new AbortController();
  return { name, scheduler, stop, done: scheduler.run(stop.signal), collecting, starts };
}

const everyUnit = (list: UnitKey[]) => () => list.map((unit) => ({ unit, generation: 1 }));

describe('UnitScheduler', () => {
  it('shares the units fairly between workers, and never runs one unit in two', async () => {
    const server = new ClaimServer();
    const list = units(6);
    const a = startWorker(server, 'a', everyUnit(list));
    await expect.poll(() => a.collecting.size).toBe(12);
    const b = startWorker(server, 'b', everyUnit(list));
    const c = startWorker(server, 'c', everyUnit(list));
    await expect.poll(() => [a, b, c].map((w) => w.collecting.size)).toEqual([4, 4, 4]);
    expect(new Set([...a.collecting, ...b.collecting, ...c.collecting]).size).toBe(12);
    for (const w of [a, b, c]) w.stop.abort();
    await Promise.all([a.done, b.done, c.done]);
    expect(server.holders.size).toBe(0);
  });

  it('takes over the units of a worker whose session ended, within a few ticks', async () => {
    const server = new ClaimServer();
    const list = units(3);
    const a = startWorker(server, 'a', everyUnit(list));
    const b = startWorker(server, 'b', everyUnit(list));
    await expect.poll(() => a.collecting.size + b.collecting.size).toBe(6);
    // b dies: its session ends, the server frees its units; b's process is gone (stopped without releasing).
    b.stop.abort();
    server.sessions.delete('b');
    server.endSession('b');
    await b.done;
    await expect.poll(() => a.collecting.size).toBe(6);
    a.stop.abort();
    await a.done;
  });

  it('stops every unit at once when its own session is lost, and claims again after reconnecting', async () => {
    const server = new ClaimServer();
    const list = units(2);
    const a = startWorker(server, 'a', everyUnit(list));
    await expect.poll(() => a.collecting.size).toBe(4);
    server.down.add('a');
    server.endSession('a');
    await expect.poll(() => a.collecting.size).toBe(0);
    const startsWhileDown = a.starts.length;
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(a.starts.length).toBe(startsWhileDown);
    server.down.delete('a');
    await expect.poll(() => a.collecting.size, { timeout: 5_000 }).toBe(4);
    a.stop.abort();
    await a.done;
  });

  it('restarts the units of a tenant whose configuration changed, and stops those of a tenant removed', async () => {
    const server = new ClaimServer();
    let desired = units(2).map((unit) => ({ unit, generation: 1 }));
    const a = startWorker(server, 'a', () => desired);
    await expect.poll(() => a.collecting.size).toBe(4);
    desired = desired.filter((entry) => entry.unit.tenant !== 'tenant-1').map((entry) => ({ ...entry, generation: 2 }));
    await expect.poll(() => [...a.collecting].sort()).toEqual(['tenant-0/Audit.Exchange', 'tenant-0/Audit.SharePoint']);
    await expect.poll(() => a.starts.filter((name) => name === 'tenant-0/Audit.Exchange').length).toBe(2);
    expect(server.count('a')).toBe(2);
    a.stop.abort();
    await a.done;
  });

  it('--once: ends as soon as its last unit does, not at the next look at the claims', async () => {
    const server = new ClaimServer();
    // A look at the claims a minute away: a run of one tenant must not wait for it once its units are done.
    const a = startWorker(server, 'a', everyUnit(units(1)), { once: true, tickMs: 60_000 });
    let ended = false;
    void a.done.then(() => { ended = true; });
    await expect.poll(() => ended, { timeout: 5_000 }).toBe(true);
    expect(a.starts).toHaveLength(2);
    expect(server.holders.size).toBe(0);
  });

  it('--once: collects every unit it can claim once, skips those another worker holds, and ends', async () => {
    const server = new ClaimServer();
    const list = units(3);
    server.holders.set(unitName(list[0]!), 'elsewhere');
    server.sessions.add('elsewhere');
    const a = startWorker(server, 'a', everyUnit(list), { once: true });
    await a.done;
    expect([...a.starts].sort()).toEqual(list.slice(1).map(unitName).sort());
    expect(server.count('a')).toBe(0);
  });
});
