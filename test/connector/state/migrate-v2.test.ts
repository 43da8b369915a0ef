import { describe, expect, it } from 'vitest';
import { readdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ContentType } from '../../../contract/content-types.ts';
import type { StateFileV2 } from '../../../connector/state/sqlite/migrate-v2.ts';
import { openStateStoreReadOnly } from '../../../connector/state/sqlite/store.ts';
import { openStateStore } from './open-store.ts';
import { expiredKept, type RecordKey } from '../../../connector/core/commit.ts';
import { workDir } from '../../e2e/support.ts';

/** A state file exactly as the previous release's FileStateStore wrote it (JSON.stringify of the whole state). */
function v2State(contentType: ContentType, fields: Partial<StateFileV2>): StateFileV2 {
  return {
    version: 2, contentType, sequence: 0, checkpoint: undefined, delivered: {}, recentIds: [], sinkPositions: {},
    recordsDelivered: 0, blobsDelivered: 0, duplicatesDropped: 0, expiredCount: 0, expired: [],
    lastContentSeen: undefined, lastDeliveryAt: undefined, lastError: undefined, heldBlobs: 0, updatedAt: undefined,
    ...fields,
  };
}

async function writeV2(dir: string, state: StateFileV2): Promise<void> {
  await writeFile(join(dir, `${state.contentType}.json`), JSON.stringify(state), { mode: 0o600 });
}

const key = (id: string, creationTime: string | undefined): RecordKey => ({ id, creationTime });
/** The previous release kept Ids without their CreationTime: asked with any time (or none), they are found. */
const anyTime = (id: string, i = 0): RecordKey => key(id, [undefined, '2026-11-25T09:01:00', '2020-01-01T00:00:00Z', 'not a time'][i % 4]);

const exchangeIds = Array.from({ length: 300 }, (_, i) => [`4a6f1c2e-0000-4000-8000-${String(i).padStart(12, '0')}`, Date.UTC(2026, 10, 25, 6, i)] as [string, number]);
const expired = Array.from({ length: expiredKept + 3 }, (_, i) => ({ contentId: `gone-${i}`, contentCreated: `2026-11-18T0${i % 10}:00:00.000Z`, detectedAt: '2026-11-25T09:00:00.000Z' }));

/** What a directory of the previous release holds after a few passes (and a crash, leaving a temp file and the lock). */
async function previousReleaseDir(): Promise<string> {
  const dir = await workDir();
  await writeV2(dir, v2State('Audit.Exchange', {
    sequence: 41, checkpoint: '2026-11-25T09:00:00.000Z',
    delivered: { 'blob-a': '2026-11-25T06:30:00.000Z', 'blob-b': '2026-11-25T08:45:00.000Z' },
    recentIds: exchangeIds, sinkPositions: { 'file:/var/log/o365.ndjson': 4096 },
    recordsDelivered: 1200, blobsDelivered: 60, duplicatesDropped: 7, expiredCount: expired.length + 10, expired,
    lastContentSeen: '2026-11-25T08:45:00.000Z', lastDeliveryAt: '2026-11-25T09:14:00.000Z', heldBlobs: 2, updatedAt: '2026-11-25T09:15:00.000Z',
    lastError: { code: 'AF20055', message: 'content fetch failed after retries', at: '2026-11-25T09:15:00.000Z' },
  }));
  await writeV2(dir, v2State('Audit.General', {
    sequence: 42, checkpoint: '2026-11-25T09:05:00.000Z', delivered: { 'blob-g': '2026-11-25T09:00:00.000Z' }, recentIds: [['general-id', Date.UTC(2026, 10, 25, 9)]],
    sinkPositions: { 'file:/var/log/o365.ndjson': 8192, stdout: null }, recordsDelivered: 30, blobsDelivered: 2, updatedAt: '2026-11-25T09:16:00.000Z',
  }));
  await writeV2(dir, v2State('DLP.All', { sequence: 3, sinkPositions: { 'file:/var/log/o365.ndjson': 100 } }));
  await writeFile(join(dir, 'Audit.General.json.4242.tmp'), '{"version":2,"contentType":"Audit.Gen');
  await writeFile(join(dir, 'lock'), String(process.ppid));
  return dir;
}

describe('migration from state version 2 (JSON files)', () => {
  it('ignores the previous release\'s pid lock file, even naming a live process, and removes it', async () => {
    for (const pid of [process.ppid, 1]) {
      const dir = await workDir();
      await writeV2(dir, v2State('Audit.General', { sequence: 1 }));
      await writeFile(join(dir, 'lock'), String(pid));
      await (await openStateStore(dir, { lockWaitMs: 0 })).close();
      expect(await readdir(dir)).not.toContain('lock');
    }
  });

  it('imports every content type on the first open, then retires the files and the old lock', async () => {
    const dir = await previousReleaseDir();
    const store = await openStateStore(dir, { lockWaitMs: 0 });
    try {
      const cursors = await store.cursors();
      expect([...cursors.keys()].sort()).toEqual(['Audit.Exchange', 'Audit.General', 'DLP.All']);
      expect(cursors.get('Audit.Exchange')).toEqual({
        contentType: 'Audit.Exchange', checkpoint: '2026-11-25T09:00:00.000Z', recordsDelivered: 1200, blobsDelivered: 60, duplicatesDropped: 7,
        expiredCount: expired.length + 10, expired: expired.slice(-expiredKept), lastContentSeen: '2026-11-25T08:45:00.000Z',
        lastDeliveryAt: '2026-11-25T09:14:00.000Z', lastError: { code: 'AF20055', message: 'content fetch failed after retries', at: '2026-11-25T09:15:00.000Z' },
        heldBlobs: 2, updatedAt: '2026-11-25T09:15:00.000Z', coveredFrom: undefined, lateBlobs: 0, maxLatenessMs: 0, lastSweepAt: undefined,
      });
      expect(cursors.get('DLP.All')).toMatchObject({ checkpoint: undefined, recordsDelivered: 0, lastError: undefined, updatedAt: undefined });
      // The sink positions of the latest commit (highest sequence), whichever content type made it.
      expect(await store.sinkPositions()).toEqual({ 'file:/var/log/o365.ndjson': 8192, stdout: null });
      expect(await store.deliveredBlobs('Audit.Exchange', ['blob-a', 'blob-b', 'blob-g'])).toEqual(new Set(['blob-a', 'blob-b']));
      expect(await store.seenRecords('Audit.Exchange', exchangeIds.map(([id], i) => anyTime(id, i)))).toHaveProperty('size', 300);
      expect(await store.seenRecords('Audit.General', [anyTime('general-id')])).toEqual(new Set(['general-id']));
      // The imported times still drive forgetting: Ids of blobs created before 06:10, and blobs created before 07:00, go.
      await store.commit({ contentType: 'Audit.Exchange', at: '2026-11-25T10:00:00.000Z', forgetRecordsCreatedBefore: '2026-11-25T06:10:00.000Z', forgetBlobsBefore: '2026-11-25T07:00:00.000Z' });
      expect((await store.seenRecords('Audit.Exchange', exchangeIds.map(([id], i) => anyTime(id, i)))).size).toBe(290);
      expect(await store.deliveredBlobs('Audit.Exchange', ['blob-a', 'blob-b'])).toEqual(new Set(['blob-b']));
      // A later expired blob continues the list after the imported ones.
      await store.commit({ contentType: 'Audit.Exchange', at: '2026-11-25T10:01:00.000Z', blobs: [{ contentId: 'gone-new', contentCreated: '2026-11-18T11:00:00Z' }], expired: [{ contentId: 'gone-new', contentCreated: '2026-11-18T11:00:00Z', detectedAt: '2026-11-25T10:01:00.000Z' }] });
      const after = (await store.cursors()).get('Audit.Exchange')!;
      expect(after.expired.map((e) => e.contentId)).toEqual([...expired.slice(-(expiredKept - 1)).map((e) => e.contentId), 'gone-new']);
    } finally {
      await store.close();
    }
    expect((await readdir(dir)).sort()).toEqual([
      'Audit.Exchange.json.migrated-v2', 'Audit.General.json.migrated-v2', 'DLP.All.json.migrated-v2', 'connector.lock', 'state.db',
    ]);
  });

  it('finds imported Ids by Id alone, next to records keyed by CreationTime, and forgets them by their blob time', async () => {
    const dir = await previousReleaseDir();
    const store = await openStateStore(dir, { lockWaitMs: 0 });
    const [oldest, , next] = exchangeIds.map(([id]) => id); // blobs created at 06:00 and 06:02
    try {
      // Of that content type only.
      expect(await store.seenRecords('Audit.Exchange', [anyTime('general-id'), anyTime(oldest!)])).toEqual(new Set([oldest]));
      // A record delivered by this release is keyed by its CreationTime beside them (here one with an imported Id).
      await store.commit({ contentType: 'Audit.Exchange', at: '2026-11-25T12:00:00.000Z', recordKeys: [key(oldest!, '2026-11-25T11:45:00'), key('new-id', '2026-11-25T11:30:00')], records: 2 });
      expect(await store.seenRecords('Audit.Exchange', [key(oldest!, '2026-11-25T11:59:00'), key('new-id', '2026-11-25T11:30:00.5Z'), key('new-id', '2026-11-25T11:31:00')]))
        .toEqual(new Set([oldest, 'new-id']));
      // The bound compares the blob time the previous release kept, whatever the CreationTime asked: at 06:01
      // the Id of the 06:00 blob goes (what remains of it is the record keyed by this release), that of 06:02 stays.
      await store.commit({ contentType: 'Audit.Exchange', at: '2026-11-25T12:01:00.000Z', forgetRecordsCreatedBefore: '2026-11-25T06:01:00.000Z' });
      expect(await store.seenRecords('Audit.Exchange', [key(oldest!, '2026-11-25T11:59:00'), key(next!, '2020-01-01T00:00:00')])).toEqual(new Set([next]));
      expect(await store.seenRecords('Audit.Exchange', [key(oldest!, '2026-11-25T11:45:00')])).toEqual(new Set([oldest]));
      // Another content type's imported Ids are forgotten only by its own commits.
      expect(await store.seenRecords('Audit.General', [anyTime('general-id')])).toEqual(new Set(['general-id']));
      // Once every imported Id is forgotten, only records keyed by CreationTime remain (also after a reopen).
      await store.commit({ contentType: 'Audit.Exchange', at: '2026-11-25T12:02:00.000Z', forgetRecordsCreatedBefore: '2026-11-25T11:00:00.000Z' });
      await store.commit({ contentType: 'Audit.General', at: '2026-11-25T12:02:00.000Z', forgetRecordsCreatedBefore: '2026-11-25T09:00:00.001Z' });
      expect(await store.seenRecords('Audit.Exchange', exchangeIds.map(([id], i) => anyTime(id, i)))).toEqual(new Set());
      expect(await store.seenRecords('Audit.General', [anyTime('general-id')])).toEqual(new Set());
      expect(await store.seenRecords('Audit.Exchange', [key('new-id', '2026-11-25T11:30:00'), key('new-id', undefined), key(oldest!, '2026-11-25T11:45:00'), key(oldest!, undefined)]))
        .toEqual(new Set(['new-id', oldest]));
      expect(await store.seenRecords('Audit.Exchange', [key(oldest!, undefined), key(next!, '2026-11-25T11:45:00')])).toEqual(new Set());
    } finally {
      await store.close();
    }
    const reopened = await openStateStore(dir, { lockWaitMs: 0 });
    try {
      expect(await reopened.seenRecords('Audit.Exchange', [anyTime(next!), anyTime(oldest!), key('new-id', '2026-11-25T11:30:00')])).toEqual(new Set(['new-id']));
    } finally {
      await reopened.close();
    }
  });

  it('lets status find imported Ids in the database by Id alone', async () => {
    const dir = await previousReleaseDir();
    await (await openStateStore(dir, { lockWaitMs: 0 })).close();
    const reader = await openStateStoreReadOnly(dir);
    try {
      expect(await reader.seenRecords('Audit.General', [key('general-id', '2026-11-25T08:59:00'), key('x', undefined)])).toEqual(new Set(['general-id']));
      expect((await reader.seenRecords('Audit.Exchange', exchangeIds.map(([id], i) => anyTime(id, i)))).size).toBe(300);
    } finally {
      await reader.close();
    }
  });

  it('imports once: a reopen, or files put back after the import committed, change nothing', async () => {
    const dir = await previousReleaseDir();
    const first = await openStateStore(dir, { lockWaitMs: 0 });
    const imported = await first.cursors();
    await first.close();
    // As after a crash between the import's commit and the renames.
    for (const name of await readdir(dir)) if (name.endsWith('.migrated-v2')) await rename(join(dir, name), join(dir, name.slice(0, -'.migrated-v2'.length)));
    const second = await openStateStore(dir, { lockWaitMs: 0 });
    try {
      expect(await second.cursors()).toEqual(imported);
    } finally {
      await second.close();
    }
    expect(await readdir(dir)).not.toContain('Audit.Exchange.json');
  });

  it('lets status read the files before the first run of this release, without importing or creating anything', async () => {
    const dir = await previousReleaseDir();
    const before = (await readdir(dir)).sort();
    const reader = await openStateStoreReadOnly(dir);
    try {
      const cursors = await reader.cursors();
      expect(cursors.get('Audit.Exchange')).toMatchObject({ recordsDelivered: 1200, expired: expired.slice(-expiredKept), lastError: { code: 'AF20055' } });
      expect(await reader.sinkPositions()).toEqual({ 'file:/var/log/o365.ndjson': 8192, stdout: null });
      expect(await reader.deliveredBlobs('Audit.General', ['blob-g', 'blob-a'])).toEqual(new Set(['blob-g']));
      expect(await reader.seenRecords('Audit.General', [key('general-id', '2026-11-25T08:59:00'), key('x', undefined)])).toEqual(new Set(['general-id']));
      expect(await reader.seenRecords('Audit.General', [key('general-id', undefined)])).toEqual(new Set(['general-id']));
      expect(await reader.seenRecords('Audit.Exchange', [key('general-id', '2026-11-25T08:59:00')])).toEqual(new Set());
    } finally {
      await reader.close();
    }
    expect((await readdir(dir)).sort()).toEqual(before);
  });

  it('says which file is corrupt instead of starting over, and imports nothing until it is fixed', async () => {
    const dir = await previousReleaseDir();
    await writeFile(join(dir, 'Audit.SharePoint.json'), '{"version":2,');
    const corrupt = { code: 'STATE_CORRUPT', message: `${join(dir, 'Audit.SharePoint.json')} is not valid JSON`, fix: expect.stringMatching(/restore it from backup, or move it away/) };
    await expect(openStateStore(dir, { lockWaitMs: 0 })).rejects.toMatchObject(corrupt);
    await expect(openStateStoreReadOnly(dir)).rejects.toMatchObject(corrupt);
    expect(await readdir(dir)).toContain('Audit.Exchange.json');
    await rename(join(dir, 'Audit.SharePoint.json'), join(dir, 'Audit.SharePoint.json.bad'));
    const store = await openStateStore(dir, { lockWaitMs: 0 });
    try {
      expect((await store.cursors()).get('Audit.Exchange')!.recordsDelivered).toBe(1200);
    } finally {
      await store.close();
    }
  });

  it('refuses a file of another format under a content type\'s name', async () => {
    const dir = await workDir();
    await writeFile(join(dir, 'DLP.All.json'), JSON.stringify({ version: 1, contentType: 'DLP.All' }));
    await expect(openStateStore(dir, { lockWaitMs: 0 })).rejects.toMatchObject({ code: 'STATE_CORRUPT', message: `${join(dir, 'DLP.All.json')} is not a state file of this connector version` });
  });
});
