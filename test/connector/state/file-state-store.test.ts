import { describe, expect, it } from 'vitest';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FileStateStore, readState } from '../../../connector/state/file-state-store.ts';
import { emptyState } from '../../../connector/state/state.ts';
import { workDir } from '../../e2e/support.ts';

describe('file state store', () => {
  it('saves atomically: a torn temporary file never replaces the good state', async () => {
    const dir = await workDir();
    const store = await FileStateStore.open(dir);
    const state = emptyState();
    state.sinkPositions['file:/x'] = 42;
    await store.save(state);
    await writeFile(join(dir, `state.json.99999.tmp`), '{"version":1,"cursors":{'); // a crash mid-write of a later save
    expect((await readState(dir))?.sinkPositions).toEqual({ 'file:/x': 42 });
    await store.close();
  });

  it('refuses a second connector on the same state directory, and takes over a dead owner\'s lock', async () => {
    const dir = await workDir();
    await writeFile(join(dir, 'lock'), String(process.ppid)); // another live process owns it
    await expect(FileStateStore.open(dir)).rejects.toThrow(`state directory ${dir} is in use by process ${process.ppid}`);
    await writeFile(join(dir, 'lock'), '2147483646'); // a pid that cannot be alive
    const again = await FileStateStore.open(dir);
    await again.close();
    expect(await readdir(dir)).not.toContain('lock');
  });

  it('starts from an empty state and holds no secret-looking key', async () => {
    const dir = await workDir();
    const store = await FileStateStore.open(dir);
    const state = await store.load();
    expect(state).toEqual(emptyState());
    expect(JSON.stringify(state)).not.toMatch(/secret|token|password/i);
    await store.close();
  });
});
