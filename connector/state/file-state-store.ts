import { closeSync, openSync, writeSync, fsyncSync, readFileSync, unlinkSync } from 'node:fs';
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { ConnectorError } from '../errors.ts';
import { emptyState, type ConnectorState, type StateStore } from './state.ts';

export const stateFileName = 'state.json';
const lockFileName = 'lock';

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Reads the state of a directory without taking its lock (for `status`). */
export async function readState(dir: string): Promise<ConnectorState | undefined> {
  let text: string;
  try {
    text = await readFile(join(dir, stateFileName), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    return JSON.parse(text) as ConnectorState;
  } catch {
    throw new ConnectorError('STATE_CORRUPT', `${join(dir, stateFileName)} is not valid JSON.`, { fix: 'restore it from backup, or move it away to start over from --since (records may repeat)' });
  }
}

/**
 * The embedded default: one JSON file in the state directory, replaced atomically (temp file, fsync, rename,
 * fsync of the directory), and a lock file naming the owning process so two connectors never share a state.
 */
export class FileStateStore implements StateStore {
  readonly #dir: string;
  #locked = false;

  private constructor(dir: string) {
    this.#dir = dir;
  }

  static async open(dir: string): Promise<FileStateStore> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const store = new FileStateStore(dir);
    store.#lock();
    return store;
  }

  #lock(): void {
    const path = join(this.#dir, lockFileName);
    for (let attempt = 0; attempt < 2; attempt += 1) {
      try {
        const fd = openSync(path, 'wx', 0o600);
        writeSync(fd, String(process.pid));
        fsyncSync(fd);
        closeSync(fd);
        this.#locked = true;
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        const owner = Number(readFileSync(path, 'utf8').trim());
        if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && processAlive(owner)) {
          throw new ConnectorError('STATE_LOCKED', `state directory ${this.#dir} is in use by process ${owner}.`, { fix: 'stop that connector, or give this one its own --state directory' });
        }
        unlinkSync(path); // left by a process that died: take it over
      }
    }
    throw new ConnectorError('STATE_LOCKED', `could not lock state directory ${this.#dir}.`);
  }

  async load(): Promise<ConnectorState> {
    return (await readState(this.#dir)) ?? emptyState();
  }

  async save(state: ConnectorState): Promise<void> {
    const target = join(this.#dir, stateFileName);
    const temp = `${target}.${process.pid}.tmp`;
    const file = await open(temp, 'w', 0o600);
    try {
      await file.writeFile(JSON.stringify(state));
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(temp, target);
    const dir = await open(this.#dir, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  }

  async close(): Promise<void> {
    if (!this.#locked) return;
    this.#locked = false;
    try {
      unlinkSync(join(this.#dir, lockFileName));
    } catch {
      // already gone
    }
  }
}
