/**
 * The default checkpoint store: one JSON file per content type in the state directory (`Audit.Exchange.json`,
 * ...), each replaced atomically (temp file, fsync, rename, fsync of the directory), and a lock file naming the
 * owning process so two connectors never share a state directory.
 */
import { closeSync, fsyncSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { isContentType, type ContentType } from '../api/content-types.ts';
import { ConnectorError } from '../errors.ts';
import type { ContentTypeState, StateStore } from './state.ts';

export const lockFileName = 'lock';

export function stateFileOf(dir: string, contentType: ContentType): string {
  return join(dir, `${contentType}.json`);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Reads every content type's state of a directory without taking its lock (for `status`, which works offline). */
export async function readStates(dir: string): Promise<Map<ContentType, ContentTypeState>> {
  const states = new Map<ContentType, ContentTypeState>();
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return states;
    throw error;
  }
  for (const name of names) {
    const contentType = name.endsWith('.json') ? name.slice(0, -'.json'.length) : '';
    if (!isContentType(contentType)) continue; // temp files of an interrupted save, the lock, anything else
    const file = join(dir, name);
    let parsed: ContentTypeState;
    try {
      parsed = JSON.parse(await readFile(file, 'utf8')) as ContentTypeState;
    } catch {
      throw new ConnectorError('STATE_CORRUPT', `${file} is not valid JSON`, { fix: 'restore it from backup, or move it away to start that content type over from --since (records may repeat)' });
    }
    if (parsed.version !== 2 || parsed.contentType !== contentType) {
      throw new ConnectorError('STATE_CORRUPT', `${file} is not a state file of this connector version`, { fix: 'give this connector its own --state directory' });
    }
    states.set(contentType, parsed);
  }
  return states;
}

export class FileStateStore implements StateStore {
  readonly #dir: string;
  #locked = false;

  private constructor(dir: string) {
    this.#dir = dir;
  }

  /** Creates the directory (0700) if needed and takes its lock; throws STATE_LOCKED when a live process holds it. */
  static async open(dir: string): Promise<FileStateStore> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const store = new FileStateStore(dir);
    store.#lock();
    await store.#removeTempFiles();
    return store;
  }

  get dir(): string {
    return this.#dir;
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
          throw new ConnectorError('STATE_LOCKED', `state directory ${this.#dir} is in use by process ${owner}`, { fix: 'stop that connector, or give this one its own --state directory' });
        }
        unlinkSync(path); // left by a process that died (SIGKILL, power loss): take it over
      }
    }
    throw new ConnectorError('STATE_LOCKED', `could not lock state directory ${this.#dir}`);
  }

  /** A save interrupted by a crash leaves its temp file behind; it never replaced the good file, so drop it. */
  async #removeTempFiles(): Promise<void> {
    for (const name of await readdir(this.#dir)) {
      if (name.endsWith('.tmp')) await unlink(join(this.#dir, name)).catch(() => {});
    }
  }

  async loadAll(): Promise<Map<ContentType, ContentTypeState>> {
    return readStates(this.#dir);
  }

  async save(state: ContentTypeState): Promise<void> {
    const target = stateFileOf(this.#dir, state.contentType);
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
