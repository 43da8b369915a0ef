import { describe, expect, it } from 'vitest';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FileStateStore, readStates, stateFileOf } from '../../../connector/state/file-state-store.ts';
import { emptyContentTypeState, latestSinkPositions } from '../../../connector/state/state.ts';
import { workDir } from '../../e2e/support.ts';

describe('file state store', () => {
  it('keeps one JSON file per content type, each holding its checkpoint, counters and sink positions', async () => {
    const dir = await workDir();
    const store = await FileStateStore.open(dir);
    const exchange = emptyContentTypeState('Audit.Exchange');
    exchange.checkpoint = '2026-11-25T09:00:00.000Z';
    exchange.recordsDelivered = 120;
    exchange.sinkPositions = { 'file:/var/log/o365.ndjson': 4096 };
    await store.save(exchange);
    await store.save(emptyContentTypeState('DLP.All'));
    expect((await readdir(dir)).sort()).toEqual(['Audit.Exchange.json', 'DLP.All.json', 'lock']);
    const states = await readStates(dir);
    expect(states.get('Audit.Exchange')).toEqual(exchange);
    expect(JSON.parse(await readFile(stateFileOf(dir, 'Audit.Exchange'), 'utf8')).recordsDelivered).toBe(120);
    await store.close();
  });

  it('saves atomically: a torn temporary file never replaces the good state and is removed on the next open', async () => {
    const dir = await workDir();
    const store = await FileStateStore.open(dir);
    const state = emptyContentTypeState('Audit.General');
    state.sinkPositions['file:/x'] = 42;
    await store.save(state);
    await store.close();
    // A crash in the middle of a later save: its temp file holds half a JSON document.
    await writeFile(`${stateFileOf(dir, 'Audit.General')}.99999.tmp`, '{"version":2,"contentType":"Audit.General","sinkPositions":{"file:/x":9');
    expect((await readStates(dir)).get('Audit.General')?.sinkPositions).toEqual({ 'file:/x': 42 });
    const reopened = await FileStateStore.open(dir);
    expect((await readdir(dir)).filter((name) => name.endsWith('.tmp'))).toEqual([]);
    expect((await reopened.loadAll()).get('Audit.General')?.sinkPositions).toEqual({ 'file:/x': 42 });
    await reopened.close();
  });

  it('says which file is corrupt instead of starting over silently', async () => {
    const dir = await workDir();
    await writeFile(stateFileOf(dir, 'Audit.SharePoint'), '{"version":2,');
    await expect(readStates(dir)).rejects.toThrow(/Audit\.SharePoint\.json is not valid JSON/);
  });

  it('resumes sinks from the most recent commit, whichever content type made it', () => {
    const a = { ...emptyContentTypeState('Audit.Exchange'), sequence: 7, sinkPositions: { 'file:/x': 700 } };
    const b = { ...emptyContentTypeState('Audit.General'), sequence: 9, sinkPositions: { 'file:/x': 900, stdout: null } };
    const c = { ...emptyContentTypeState('DLP.All'), sequence: 3, sinkPositions: { 'file:/x': 300 } };
    expect(latestSinkPositions([a, b, c])).toEqual({ sequence: 9, positions: { 'file:/x': 900, stdout: null } });
    expect(latestSinkPositions([])).toEqual({ sequence: 0, positions: {} });
  });

  it('refuses a second connector on the same state directory, and takes over a dead owner\'s lock', async () => {
    const dir = await workDir();
    await writeFile(join(dir, 'lock'), String(process.ppid)); // another live process owns it
    await expect(FileStateStore.open(dir)).rejects.toThrow(`state directory ${dir} is in use by process ${process.ppid}`);
    await writeFile(join(dir, 'lock'), '2147483646'); // a pid that cannot be alive
    const again = await FileStateStore.open(dir);
    expect(await readFile(join(dir, 'lock'), 'utf8')).toBe(String(process.pid));
    await again.close();
    expect(await readdir(dir)).not.toContain('lock');
  });

  it('starts from nothing in a new directory and writes no secret-looking key', async () => {
    const dir = join(await workDir(), 'new', 'state');
    const store = await FileStateStore.open(dir);
    expect((await store.loadAll()).size).toBe(0);
    await store.save(emptyContentTypeState('Audit.AzureActiveDirectory'));
    expect(await readFile(stateFileOf(dir, 'Audit.AzureActiveDirectory'), 'utf8')).not.toMatch(/secret|token|password|authorization/i);
    await store.close();
  });
});
