import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { currentPostgresSchemaVersion } from '../../../connector/state/postgres/schema.ts';
import type { ContentType } from '../../../contract/content-types.ts';
import { ConnectorError } from '../../../connector/core/errors.ts';
import { openPostgresDatabase, type OpenPostgresDatabaseOptions } from '../../../connector/state/postgres/store.ts';
import type { StateDatabase } from '../../../connector/state/store.ts';
import type { UnitKey } from '../../../connector/core/commit.ts';
import { postgresUnavailable, startTestPostgres, type TestPostgres } from '../../receivers/postgres.ts';
import { batch, claim, claimedView, contoso, describeStoreContract, fabrikam, key, type StoreHarness } from './store-contract.ts';

const skipReason = postgresUnavailable();
let server: TestPostgres;
beforeAll(async () => {
  if (skipReason === undefined) server = await startTestPostgres();
}, 60_000);
afterAll(async () => {
  await server?.stop();
});

const postgresHarness = (): StoreHarness => ({
  async place() {
    const url = await server.newDatabase();
    return {
      open: () => openPostgresDatabase(url, { workerName: 'worker-1' }),
      async deadLetters(tenant) {
        const rows = await server.admin<{ content_type: ContentType; content_id: string; element_index: number; reason: string; at: string; bytes: Buffer }>(url,
          'SELECT content_type, content_id, element_index, reason, at, bytes FROM dead_letters WHERE tenant = $1 ORDER BY seq', [tenant]);
        return rows.map((r) => ({ contentType: r.content_type, contentId: r.content_id, index: r.element_index, reason: r.reason, at: r.at, bytes: r.bytes }));
      },
    };
  },
});

describeStoreContract('PostgreSQL', postgresHarness, skipReason);

describe.skipIf(skipReason !== undefined)(`PostgreSQL fleet store: workers, claims and fencing${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  const opened: StateDatabase[] = [];
  async function worker(url: string, workerName: string, options: Partial<OpenPostgresDatabaseOptions> = {}): Promise<StateDatabase> {
    const database = await openPostgresDatabase(url, { workerName, ...options });
    opened.push(database);
    return database;
  }
  afterEach(async () => {
    for (const database of opened.splice(0)) await database.close();
  });
  const exchange: UnitKey = { tenant: contoso, contentType: 'Audit.Exchange' };
  const general: UnitKey = { tenant: fabrikam, contentType: 'Audit.General' };
  const failure = (opening: Promise<unknown>) => opening.then(() => { throw new Error('opened'); }, (error: unknown) => error as ConnectorError);
  const terminate = (url: string, workerName: string) =>
    server.admin(url, 'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = $1', [`o365-connector:${workerName}`]);

  it('claims many units in one go: up to the count asked, in the order given, skipping those another worker holds, taking no lock beyond them', async () => {
    const url = await server.newDatabase();
    const a = await worker(url, 'many-a');
    const b = await worker(url, 'many-b');
    const units: UnitKey[] = Array.from({ length: 300 }, (_, i) => ({ tenant: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, contentType: 'Audit.Exchange' }));
    expect(await claim(b, units[1]!)).toBe(true);
    const taken = await a.claims.tryClaimSome(units, 100);
    expect(taken).toHaveLength(100);
    expect(taken[0]).toEqual(units[0]);
    expect(taken).not.toContainEqual(units[1]);
    expect(taken.at(-1)).toEqual(units[100]);
    // Exactly those: the server holds 100 locks of a and one of b.
    const holders = await a.claims.holders();
    expect(holders.filter((h) => h.worker === 'many-a')).toHaveLength(100);
    expect(holders.filter((h) => h.worker === 'many-b')).toHaveLength(1);
    // What it holds counts toward the count; the others stay free for b.
    expect(await a.claims.tryClaimSome(units, 100)).toHaveLength(100);
    expect(await b.claims.tryClaimSome(units, 300)).toHaveLength(200);
    expect((await a.claims.holders()).length).toBe(300);
  });

  it('never lets two workers hold one unit; a release hands it over; counts the workers and says who holds what since when', async () => {
    const url = await server.newDatabase();
    const a = await worker(url, 'worker-a');
    const b = await worker(url, 'worker-b');
    const [first, second] = await Promise.all([claim(a, exchange), claim(b, exchange)]);
    expect([first, second].sort()).toEqual([false, true]);
    const [holder, other] = first ? [a, b] : [b, a];
    expect(await claim(holder, exchange)).toBe(true); // already its own
    expect(await claim(other, exchange)).toBe(false);
    expect(await claim(other, general)).toBe(true);
    // The read pools' connections are not workers.
    await Promise.all([a.tenant(contoso).cursors(), b.tenant(contoso).cursors()]);
    expect(await a.claims.workers()).toBe(2);
    const holders = await b.claims.holders();
    expect(holders.map((h) => [h.unit.tenant, h.unit.contentType, h.worker])).toEqual([
      [contoso, 'Audit.Exchange', holder === a ? 'worker-a' : 'worker-b'],
      [fabrikam, 'Audit.General', holder === a ? 'worker-b' : 'worker-a'],
    ].sort((x, y) => x[0]!.localeCompare(y[0]!)));
    for (const h of holders) expect(Math.abs(Date.parse(h.since!) - Date.now())).toBeLessThan(60_000);
    // Released once (however often it was claimed), it is the other's for the asking.
    await holder.claims.release(exchange);
    expect(await claim(other, exchange)).toBe(true);
    expect(await claim(holder, exchange)).toBe(false);
    await other.close();
    expect(await claim(holder, exchange)).toBe(true);
    expect(await holder.claims.workers()).toBe(1);
  });

  it('refuses (STATE_FENCED) a commit of a unit this worker does not hold, and applies none of it', async () => {
    const url = await server.newDatabase();
    const a = await worker(url, 'worker-a');
    const b = await worker(url, 'worker-b');
    expect(await claim(a, exchange)).toBe(true);
    const refused = b.tenant(contoso).commit(batch());
    await expect(refused).rejects.toBeInstanceOf(ConnectorError);
    await expect(refused).rejects.toMatchObject({ code: 'STATE_FENCED', message: expect.stringMatching(new RegExp(`^${contoso}/Audit.Exchange is no longer held by this worker \\(worker-b\\)`)) });
    // Never claimed at all: refused too.
    await expect(b.tenant(fabrikam).commit({ contentType: 'Audit.General', at: '2026-11-25T10:00:00.000Z', checkpoint: '2026-11-25T09:00:00.000Z' })).rejects.toMatchObject({ code: 'STATE_FENCED' });
    expect(await a.tenant(contoso).cursors()).toEqual(new Map());
    expect(await a.tenant(contoso).seenRecords('Audit.Exchange', [batch().recordKeys![0]!])).toEqual(new Set());
    expect(await b.tenant(contoso).sinkPositions()).toEqual({});
    // Sink positions alone belong to no unit: any worker commits its own.
    await b.tenant(contoso).commit({ at: '2026-11-25T10:00:00.000Z', sinkPositions: { stdout: null, 'file:/b.ndjson': 7 } });
    await a.tenant(contoso).commit(batch());
    expect(await b.tenant(fabrikam).sinkPositions()).toEqual({ stdout: null, 'file:/b.ndjson': 7 });
    expect(await a.tenant(fabrikam).sinkPositions()).toEqual({ 'file:/var/log/o365.ndjson': 40_960 });
  });

  it('a worker whose session is killed is told at once, commits nothing more, and its units are free for the others', async () => {
    const url = await server.newDatabase();
    const a = await worker(url, 'worker-a');
    const b = await worker(url, 'worker-b');
    expect(await claim(a, exchange)).toBe(true);
    await a.tenant(contoso).commit(batch());
    const lost = vi.fn();
    a.claims.onLost(lost);
    const killedAt = Date.now();
    await terminate(url, 'worker-a');
    await vi.waitFor(() => expect(lost).toHaveBeenCalledTimes(1), { timeout: 5_000, interval: 20 });
    expect(Date.now() - killedAt).toBeLessThan(5_000);
    expect(lost.mock.calls[0]![0]).toMatchObject({ code: 'STATE_SESSION_LOST' });
    expect(await claim(b, exchange)).toBe(true);
    const late = batch({ at: '2026-11-25T11:00:00.000Z', checkpoint: '2026-11-25T10:00:00.000Z', recordKeys: [key('late', '2026-11-25T10:30:00')] });
    await expect(a.tenant(contoso).commit(late)).rejects.toMatchObject({ code: 'STATE_FENCED' });
    await expect(a.tenant(contoso).commit({ at: '2026-11-25T11:00:00.000Z', sinkPositions: { stdout: null } })).rejects.toMatchObject({ code: 'STATE_SESSION_LOST' });
    await expect(claim(a, general)).rejects.toMatchObject({ code: 'STATE_SESSION_LOST' });
    expect((await b.tenant(contoso).cursors()).get('Audit.Exchange')).toMatchObject({ checkpoint: '2026-11-25T09:00:00.000Z', recordsDelivered: 40 });
    // A new session holds nothing; it claims what is free; it is watched like the first (once per session).
    await a.claims.reconnect();
    expect(await claim(a, exchange)).toBe(false);
    expect(await claim(a, general)).toBe(true);
    await a.tenant(fabrikam).commit({ contentType: 'Audit.General', at: '2026-11-25T11:00:00.000Z', checkpoint: '2026-11-25T10:00:00.000Z' });
    expect(lost).toHaveBeenCalledTimes(1);
    await terminate(url, 'worker-a');
    await vi.waitFor(() => expect(lost).toHaveBeenCalledTimes(2), { timeout: 5_000, interval: 20 });
  });

  it('loses a session that stops answering (the probe), without waiting for the connection to close', async () => {
    if (process.env['O365_TEST_POSTGRES_URL']) return; // needs the server process on this machine
    const url = await server.newDatabase();
    const a = await worker(url, 'worker-a', { probeIntervalMs: 100, probeTimeoutMs: 400 });
    expect(await claim(a, exchange)).toBe(true);
    const lost = vi.fn();
    a.claims.onLost(lost);
    const [backend] = await server.admin<{ pid: number }>(url, "SELECT pid FROM pg_stat_activity WHERE application_name = 'o365-connector:worker-a'");
    process.kill(backend!.pid, 'SIGSTOP');
    try {
      await vi.waitFor(() => expect(lost).toHaveBeenCalledTimes(1), { timeout: 5_000, interval: 20 });
      expect(lost.mock.calls[0]![0].message).toMatch(/did not answer a probe within 400 ms/);
      await expect(a.tenant(contoso).commit(batch())).rejects.toMatchObject({ code: 'STATE_FENCED' });
    } finally {
      process.kill(backend!.pid, 'SIGCONT');
    }
  });

  it('migrates once when several workers start together, and refuses a schema from a newer connector', async () => {
    const url = await server.newDatabase();
    await Promise.all(['w1', 'w2', 'w3', 'w4'].map((name) => worker(url, name)));
    expect(await server.admin(url, "SELECT key, value FROM meta WHERE key = 'schema_version'")).toEqual([{ key: 'schema_version', value: String(currentPostgresSchemaVersion) }]);
    for (const database of opened.splice(0)) await database.close();
    await server.admin(url, "UPDATE meta SET value = '99' WHERE key = 'schema_version'");
    await expect(openPostgresDatabase(url, { workerName: 'w5' })).rejects.toMatchObject({ code: 'STATE_VERSION', message: expect.stringMatching(/written by a newer connector \(state schema 99/) });
    await expect(openPostgresDatabase(url, { workerName: 'status', readOnly: true })).rejects.toMatchObject({ code: 'STATE_VERSION' });
  });

  it('opens read-only for status: creates nothing, reads an empty database as no state, then reads what workers committed', async () => {
    const url = await server.newDatabase();
    const tables = () => server.admin<{ count: number }>(url, "SELECT count(*)::integer AS count FROM information_schema.tables WHERE table_schema = 'public'");
    const empty = await worker(url, 'status', { readOnly: true });
    expect(await empty.tenants()).toEqual([]);
    expect(await empty.tenant(contoso).cursors()).toEqual(new Map());
    expect(await empty.tenant(contoso).seenRecords('Audit.Exchange', [key('a', undefined)])).toEqual(new Set());
    expect(await empty.claims.holders()).toEqual([]);
    expect(await empty.claims.workers()).toBe(0);
    expect(await tables()).toEqual([{ count: 0 }]);
    const a = await worker(url, 'worker-a');
    await claimedView(a, contoso).commit(batch());
    const status = await worker(url, 'status', { readOnly: true });
    expect(await status.tenants()).toEqual([contoso]);
    expect(await status.tenant(contoso).cursors()).toEqual(await a.tenant(contoso).cursors());
    expect(await status.claims.holders()).toMatchObject([{ unit: exchange, worker: 'worker-a' }]);
    expect(await status.claims.workers()).toBe(1);
    await expect(status.tenant(contoso).commit(batch())).rejects.toThrow(/read-only/);
  });

  it('says in one line, without the password, when the server is unreachable, refuses the login, or has no such database', async () => {
    const url = new URL(await server.newDatabase());
    const password = decodeURIComponent(url.password);
    const wrong = new URL(url);
    wrong.password = 'not-the-password-4711';
    const refused = await failure(openPostgresDatabase(wrong.toString(), { workerName: 'w' }));
    expect(refused).toMatchObject({ code: 'STATE_DENIED' });
    expect(refused.toLine()).toMatch(new RegExp(`^STATE_DENIED: PostgreSQL at ${url.hostname}:${url.port}/${url.pathname.slice(1)} refused user ${url.username}: .*\\. Fix: `));
    const missing = new URL(url);
    missing.pathname = '/no_such_database';
    const noDatabase = await failure(openPostgresDatabase(missing.toString(), { workerName: 'w' }));
    expect(noDatabase).toMatchObject({ code: 'STATE_NO_DATABASE', message: `PostgreSQL at ${url.hostname}:${url.port} has no database no_such_database` });
    const closed = new URL(url);
    closed.host = '127.0.0.1:1';
    const unreachable = await failure(openPostgresDatabase(closed.toString(), { workerName: 'w' }));
    expect(unreachable).toMatchObject({ code: 'STATE_UNREACHABLE', message: expect.stringMatching(/^cannot reach PostgreSQL at 127\.0\.0\.1:1\//) });
    for (const error of [refused, noDatabase, unreachable]) {
      expect(error.toLine()).not.toContain(password);
      expect(error.toLine()).not.toContain('not-the-password-4711');
      expect(error.toLine()).not.toMatch(/\n/);
    }
    const a = await worker(url.toString(), 'worker-a');
    expect(a.location).toBe(`postgresql://${url.username}@${url.hostname}:${url.port}${url.pathname}`);
  });
});

// A server of one's own only: an existing server's lock table (O365_TEST_POSTGRES_URL) cannot be made small.
const ownServerReason = skipReason ?? (process.env['O365_TEST_POSTGRES_URL'] ? 'O365_TEST_POSTGRES_URL names an existing server' : undefined);
describe.skipIf(ownServerReason !== undefined)(`PostgreSQL whose lock table is full${ownServerReason ? ` (skipped: ${ownServerReason})` : ''}`, () => {
  it('refuses more claims with one line naming max_locks_per_transaction, keeps no lock it did not report, and claims again once there is room', { timeout: 60_000 }, async () => {
    // A lock table of a few hundred slots (max_locks_per_transaction × connections, plus slack).
    const small = await startTestPostgres({ max_locks_per_transaction: '10', max_connections: '20' });
    try {
      const url = await small.newDatabase();
      const database = await openPostgresDatabase(url, { workerName: 'crowded' });
      try {
        const units: UnitKey[] = Array.from({ length: 20_000 }, (_, i) => ({ tenant: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, contentType: 'Audit.General' }));
        const failure = await database.claims.tryClaimSome(units, units.length).then(() => undefined, (error: unknown) => error as ConnectorError);
        expect(failure).toBeInstanceOf(ConnectorError);
        expect(failure!.toLine()).toMatch(/^STATE_LOCKS_EXHAUSTED: PostgreSQL has no room for more advisory locks \(worker crowded holds 0 units; .*\) Fix: raise max_locks_per_transaction/);
        // The locks the failed statement took before running out were given back: the server holds none of this worker's.
        expect(await database.claims.holders()).toEqual([]);
        // The session carries on: a claim that fits succeeds.
        expect(await database.claims.tryClaimSome(units.slice(0, 50), 50)).toHaveLength(50);
        expect(await database.claims.holders()).toHaveLength(50);
      } finally {
        await database.close();
      }
    } finally {
      await small.stop();
    }
  });
});
