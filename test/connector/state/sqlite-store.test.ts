import { afterEach, describe, expect, it } from 'vitest';
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import type { ContentType } from '../../../contract/content-types.ts';
import { deadLetterFileNameOf } from '../../../connector/state/sqlite/dead-letter.ts';
import type { StateStore } from '../../../connector/state/store.ts';
import { openStateDatabase, openStateStoreReadOnly } from '../../../connector/state/sqlite/store.ts';
import { openStateStore } from './open-store.ts';
import { stateDbName } from '../../../connector/state/sqlite/schema.ts';
import { workDir } from '../../e2e/support.ts';
import { batch, describeStoreContract, key, type StoreHarness } from './store-contract.ts';

const opened: StateStore[] = [];
async function open(dir: string, lockWaitMs = 0): Promise<StateStore> {
  const store = await openStateStore(dir, { lockWaitMs });
  opened.push(store);
  return store;
}
afterEach(async () => {
  for (const store of opened.splice(0)) await store.close();
});

/** A state directory: opened as a run opens it, its dead letters read back from the tenant's file. */
const sqliteHarness = (): StoreHarness => ({
  async place() {
    const dir = await workDir();
    return {
      open: () => openStateDatabase(dir, { lockWaitMs: 0 }),
      async deadLetters(tenant) {
        const text = await readFile(join(dir, deadLetterFileNameOf(tenant)), 'utf8').catch(() => '');
        return text.split('\n').filter(Boolean).map((line) => {
          const d = JSON.parse(line) as { at: string; contentType: ContentType; contentId: string; index: number; reason: string; text?: string; base64?: string };
          return { contentType: d.contentType, contentId: d.contentId, index: d.index, reason: d.reason, at: d.at, bytes: d.text !== undefined ? Buffer.from(d.text, 'utf8') : Buffer.from(d.base64!, 'base64') };
        });
      },
    };
  },
});

describeStoreContract('SQLite', sqliteHarness);

describe('SQLite state store', () => {
  it('creates a private directory and database, and starts with no cursor and no sink position', async () => {
    const dir = join(await workDir(), 'new', 'state');
    const store = await open(dir);
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    expect((await stat(join(dir, stateDbName))).mode & 0o777).toBe(0o600);
    expect((await readdir(dir)).filter((name) => !name.startsWith(stateDbName))).toEqual(['connector.lock']);
    expect(await store.cursors()).toEqual(new Map());
    expect(await store.sinkPositions()).toEqual({});
    expect(store.location).toBe(dir);
  });

  it('refuses a second opener of the same directory in the same process, and lets it in once the first closes', async () => {
    const dir = await workDir();
    const first = await open(dir);
    await expect(openStateStore(dir, { lockWaitMs: 50 })).rejects.toMatchObject({
      code: 'STATE_LOCKED',
      message: `state directory ${dir} is in use by another running connector`,
      fix: 'stop that connector, or give this one its own --state directory',
    });
    // The refused attempts did not loosen the first one's hold.
    await expect(openStateStore(dir, { lockWaitMs: 0 })).rejects.toMatchObject({ code: 'STATE_LOCKED' });
    await first.close();
    await (await open(dir)).close();
  });

  it('says the database is corrupt instead of starting over', async () => {
    const dir = await workDir();
    await writeFile(join(dir, stateDbName), 'this is not a SQLite database, it is a text file that happens to be long enough '.repeat(20));
    await expect(openStateStore(dir, { lockWaitMs: 0 })).rejects.toMatchObject({ code: 'STATE_CORRUPT', message: `${join(dir, stateDbName)} is not a readable state database` });
    await expect(openStateStoreReadOnly(dir)).rejects.toMatchObject({ code: 'STATE_CORRUPT' });
    // The lock was given back.
    await writeFile(join(dir, stateDbName), '');
    await (await open(dir)).close();
  });

  it('refuses a database written by a newer connector', async () => {
    const dir = await workDir();
    await (await open(dir)).close();
    const db = new DatabaseSync(join(dir, stateDbName));
    db.exec("UPDATE meta SET value = '99' WHERE key = 'schema_version'");
    db.close();
    await expect(openStateStore(dir, { lockWaitMs: 0 })).rejects.toMatchObject({ code: 'STATE_VERSION', message: expect.stringMatching(/written by a newer connector \(state schema 99/) });
    await expect(openStateStoreReadOnly(dir)).rejects.toMatchObject({ code: 'STATE_VERSION' });
  });
});

describe('read-only state store (status)', () => {
  it('reads what a running connector committed, without its lock, and cannot write', async () => {
    const dir = await workDir();
    const writer = await open(dir);
    await writer.commit(batch());
    const reader = await openStateStoreReadOnly(dir);
    try {
      expect(await reader.cursors()).toEqual(await writer.cursors());
      expect(await reader.sinkPositions()).toEqual({ 'file:/var/log/o365.ndjson': 40_960 });
      await writer.commit(batch({ at: '2026-11-25T10:05:00.000Z', recordKeys: [key('later', '2026-11-25T09:04:00')], records: 1 }));
      expect((await reader.cursors()).get('Audit.Exchange')!.recordsDelivered).toBe(41);
      expect(await reader.seenRecords('Audit.Exchange', [key('later', '2026-11-25T09:04:00Z'), key('later-too', '2026-11-25T09:04:00')])).toEqual(new Set(['later']));
      await expect(reader.commit(batch())).rejects.toThrow(/read-only/);
    } finally {
      await reader.close();
    }
    // The writer still holds the directory.
    await expect(openStateStore(dir, { lockWaitMs: 0 })).rejects.toMatchObject({ code: 'STATE_LOCKED' });
  });

  it('reads a missing directory or database as empty and creates nothing', async () => {
    const parent = await workDir();
    const missing = join(parent, 'never-ran');
    const store = await openStateStoreReadOnly(missing);
    expect(await store.cursors()).toEqual(new Map());
    expect(await store.sinkPositions()).toEqual({});
    expect(await store.seenRecords('Audit.General', [key('a', undefined)])).toEqual(new Set());
    await store.close();
    expect(await readdir(parent)).toEqual([]);
    const empty = await openStateStoreReadOnly(parent);
    expect(await empty.cursors()).toEqual(new Map());
    await empty.close();
    expect(await readdir(parent)).toEqual([]);
  });
});
