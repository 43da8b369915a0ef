/**
 * File sink: `file:<path>`.
 * Delivery: exactly once across crashes. Each batch is appended as NDJSON (one record per line) and fsynced
 * before the write is acknowledged; the acknowledged position is saved with the checkpoint. On start it cuts
 * the file back to the last saved offset, removing whatever was written after the last checkpoint, because
 * those records will be fetched and written again: but only bytes it can prove are its own.
 * Ownership: while running, the sink holds `.<name>.lock` beside the file (a lock the operating system releases
 * when the process dies, see core/lock-file.ts): a second connector given the same file waits, then stops with
 * SINK_LOCKED. The lock file also records each run that held it (the writer id kept in this connector's state, the
 * file's device and inode, and where the run began). Bytes after the checkpoint are cut only when the last run
 * that held the file was this connector's, on this same file, and began at or before the checkpoint; otherwise
 * they are another connector's and the sink stops with SINK_FOREIGN_BYTES instead of destroying them.
 * Rotation: a file that is no longer the one of the checkpoint (another device or inode) is a new file: appended
 * to from its end.
 * A fleet worker that lost its state session cuts the file back the same way (`rewind`) before its units run again.
 * Buffering: none beyond the batch being written. Appends across runs; a failed write is cut back to the last
 * acknowledged offset before the pipeline retries it, so the file only ever holds whole lines.
 * Emits: each record as the bytes Microsoft sent, unchanged, followed by a line feed (a record the API
 * pretty-printed across lines is compacted to one, nothing inside its strings changing; see
 * connector/sources/activity-api/content-records.ts).
 * Position: `{ offset, device, inode, writer }`: where the file ends after the acknowledged write, which file
 * that is, and this connector's writer id. (A bare number, the offset, from earlier releases is understood.)
 */
import { randomUUID } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { ConfigError, ConnectorError, SinkError } from '../core/errors.ts';
import { takeLockFile, type HeldLock } from '../core/lock-file.ts';
import { makeDirectory } from '../core/make-directory.ts';
import type { Logger } from '../observe/log.ts';
import type { ComponentReporter } from '../observe/telemetry.ts';
import type { Sink } from './sink.ts';
import type { SinkBatch, SinkCallOptions, SinkPosition } from '../core/records.ts';
import { LineBuffer, ndjson } from './ndjson.ts';

interface FileIdentity { readonly device: string; readonly inode: string }
interface FilePosition extends FileIdentity { readonly offset: number; readonly writer: string }
/** What a saved position says; identity and writer are missing in a position of an earlier release. */
type SavedPosition = { offset: number } & Partial<FilePosition>;

const runsKept = 20;

export class FileSink implements Sink {
  readonly name: string;
  readonly #path: string;
  readonly #telemetry: ComponentReporter | undefined;
  readonly #logger: Logger | undefined;
  readonly #lockWaitMs: number;
  #lock: HeldLock | undefined;
  #file: FileHandle | undefined;
  #identity: FileIdentity | undefined;
  #writer: string | undefined;
  /** This run's row in the lock file's runs table. */
  #run: number | undefined;
  #offset = 0;
  /** Where this run began appending: bytes before it are not this run's to cut. */
  #began = 0;
  readonly #lines = new LineBuffer();

  /** `lockWaitMs`: how long to wait for the file's lock held by another connector (15 s by default). */
  constructor(path: string, options: { telemetry?: ComponentReporter; logger?: Logger; lockWaitMs?: number } = {}) {
    if (path.trim() === '') throw new ConfigError('--sink', 'file: needs a path', 'e.g. --sink file:/var/log/o365/audit.ndjson');
    this.#path = resolve(path);
    this.name = `file:${this.#path}`;
    this.#telemetry = options.telemetry;
    this.#logger = options.logger;
    this.#lockWaitMs = options.lockWaitMs ?? 15_000;
  }

  async open(resumeFrom: SinkPosition | undefined, options: SinkCallOptions = {}): Promise<void> {
    makeDirectory(dirname(this.#path));
    // The lock file: beside the file, hidden, never deleted.
    this.#lock = await takeLockFile(join(dirname(this.#path), `.${basename(this.#path)}.lock`), {
      waitMs: this.#lockWaitMs, abortSignal: options.abortSignal, durable: true, mode: 0o640,
      onWait: () => this.#logger?.info({ component: 'sink', sink: this.name }, 'the file is locked by another connector; waiting for it'),
      taken: () => new SinkError('SINK_LOCKED', `${this.#path} is being written by another running connector`, { fix: 'give each connector its own file: a file sink belongs to one connector at a time' }),
    });
    try {
      this.#offset = await this.#resume(savedPosition(resumeFrom));
      this.#began = this.#offset;
    } catch (error) {
      await this.close();
      throw error;
    }
  }

  /** Opens the file and decides where this run appends: see the header for the rules. */
  async #resume(saved: SavedPosition | undefined): Promise<number> {
    const db = this.#lock!.db;
    db.exec('CREATE TABLE IF NOT EXISTS runs (seq INTEGER PRIMARY KEY, writer TEXT NOT NULL, device TEXT NOT NULL, inode TEXT NOT NULL, began_at INTEGER NOT NULL, ended_at INTEGER, started_at TEXT NOT NULL)');
    const lastRun = db.prepare('SELECT writer, device, inode, began_at AS beganAt FROM runs ORDER BY seq DESC LIMIT 1').get() as { writer: string; device: string; inode: string; beganAt: number } | undefined;
    this.#file = await open(this.#path, 'a+', 0o640);
    const stats = await this.#file.stat({ bigint: true });
    this.#identity = { device: String(stats.dev), inode: String(stats.ino) };
    this.#writer = saved?.writer ?? randomUUID();
    const size = Number(stats.size);
    let offset = size;
    if (saved && saved.inode !== undefined && (saved.inode !== this.#identity.inode || saved.device !== this.#identity.device)) {
      this.#logger?.info({ component: 'sink', sink: this.name, size }, 'the file is not the one of the last checkpoint (rotated or replaced): appending to this one');
    } else if (saved && saved.offset > size) {
      this.#logger?.warn({ component: 'sink', sink: this.name, expected: saved.offset, size }, 'the file is shorter than at the last checkpoint: it was truncated by someone else');
    } else if (saved && saved.offset < size) {
      const { device, inode } = this.#identity;
      const ownRun = lastRun !== undefined && lastRun.writer === this.#writer && lastRun.device === device && lastRun.inode === inode && saved.offset >= Number(lastRun.beganAt);
      // A position of an earlier release, on a file no run of this release has held: its tail is trusted as before.
      const earlierRelease = saved.writer === undefined && lastRun === undefined;
      // This connector's last run on the file ended cleanly right at the checkpoint: nothing after it is its own.
      const ownEnd = db.prepare('SELECT ended_at AS endedAt FROM runs WHERE writer = ? AND device = ? AND inode = ? ORDER BY seq DESC LIMIT 1').get(this.#writer, device, inode) as { endedAt: number | null } | undefined;
      if (!ownRun && ownEnd?.endedAt !== null && ownEnd?.endedAt !== undefined && Number(ownEnd.endedAt) === saved.offset) {
        this.#logger?.info({ component: 'sink', sink: this.name, foreignBytes: size - saved.offset }, 'another connector appended to the file since this one stopped; appending after its records');
      } else if (!ownRun && !earlierRelease) {
        throw new SinkError('SINK_FOREIGN_BYTES', `${this.#path} holds ${size - saved.offset} bytes after this connector's last checkpoint (offset ${saved.offset}) that another connector wrote; cutting them would lose its records`, {
          fix: `give each connector its own file; to resume this one, move ${this.#path} aside (the records after its checkpoint are then written again to a new file)`,
        });
      } else {
        await this.#file.truncate(saved.offset);
        await this.#file.sync();
        this.#logger?.warn({ component: 'sink', sink: this.name, cutBytes: size - saved.offset }, 'cut records written after the last checkpoint; they will be written again');
        offset = saved.offset;
      }
    }
    this.#run = Number(db.prepare('INSERT INTO runs (writer, device, inode, began_at, started_at) VALUES (?, ?, ?, ?, ?)').run(this.#writer, this.#identity.device, this.#identity.inode, offset, new Date().toISOString()).lastInsertRowid);
    db.prepare('DELETE FROM runs WHERE seq <= (SELECT MAX(seq) FROM runs) - ?').run(runsKept);
    return offset;
  }

  async check(): Promise<string> {
    try {
      makeDirectory(dirname(this.#path));
      const file = await open(this.#path, 'a', 0o640);
      try {
        await file.sync();
      } finally {
        await file.close();
      }
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
      const why = code === 'ENOTDIR' || code === 'EEXIST' ? 'a parent of it is a file, not a directory' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'EROFS' ? 'read-only file system' : code;
      throw new SinkError('SINK_UNWRITABLE', `${this.#path} cannot be appended to and synced: ${why}`, { fix: 'give a path in a directory the connector\'s user may write, on a writable file system' });
    }
    return 'appendable and fsync-able';
  }

  position(): SinkPosition {
    return { offset: this.#offset, ...this.#identity!, writer: this.#writer! };
  }

  async write(batch: SinkBatch): Promise<SinkPosition> {
    if (!this.#file) throw new ConnectorError('SINK_CLOSED', `${this.name} is not open`);
    if (batch.records.length === 0) return this.position();
    const bytes = ndjson(batch.records.map((record) => record.bytes), this.#lines);
    try {
      // 'a+' appends at the end whatever the position; the offset we report is where the file now ends.
      for (let written = 0; written < bytes.length;) {
        written += (await this.#file.write(bytes, written, bytes.length - written)).bytesWritten;
      }
      await this.#file.sync();
    } catch (error) {
      // A half-written batch (disk full) is cut off, so the retry starts on a line boundary.
      await this.#file.truncate(this.#offset).catch(() => {});
      this.#telemetry?.error({ stage: 'sending', code: (error as NodeJS.ErrnoException).code ?? 'EIO', message: String(error), discarded: 0 });
      throw new ConnectorError((error as NodeJS.ErrnoException).code ?? 'EIO', `cannot write ${this.#path}: ${(error as Error).message}.`, { fix: 'check disk space and permissions', retryable: true });
    }
    this.#offset += bytes.length;
    this.#telemetry?.sent(batch.records.length, bytes.length);
    return this.position();
  }

  async rewind(position: SinkPosition | undefined): Promise<void> {
    const saved = savedPosition(position);
    if (!this.#file || !saved || saved.offset >= this.#offset) return;
    // A committed position of another file (rotated since): nothing of it is in this one.
    if (saved.inode !== undefined && (saved.inode !== this.#identity!.inode || saved.device !== this.#identity!.device)) return;
    if (saved.offset < this.#began) {
      this.#logger?.warn({ component: 'sink', sink: this.name, committed: saved.offset, began: this.#began }, 'the committed position lies before where this run began: the file is left as it is');
      return;
    }
    await this.#file.truncate(saved.offset);
    await this.#file.sync();
    this.#logger?.warn({ component: 'sink', sink: this.name, cutBytes: this.#offset - saved.offset }, 'cut records written after the last commit; they will be written again');
    this.#offset = saved.offset;
  }

  async close(): Promise<void> {
    await this.#file?.close();
    // Where this run ended, every write acknowledged: what a later start needs to tell its own bytes from others'.
    if (this.#file && this.#run !== undefined) this.#lock?.db.prepare('UPDATE runs SET ended_at = ? WHERE seq = ?').run(this.#offset, this.#run);
    this.#file = undefined;
    this.#lock?.release();
    this.#lock = undefined;
  }
}

function savedPosition(position: SinkPosition | undefined): SavedPosition | undefined {
  if (typeof position === 'number') return { offset: position };
  if (position === null || typeof position !== 'object' || Array.isArray(position)) return undefined;
  const { offset, device, inode, writer } = position as Record<string, unknown>;
  if (typeof offset !== 'number') return undefined;
  return {
    offset,
    ...(typeof device === 'string' && typeof inode === 'string' ? { device, inode } : {}),
    ...(typeof writer === 'string' ? { writer } : {}),
  };
}
