/**
 * File sink: `file:<path>`.
 * Delivery: exactly once across crashes. Each batch is appended as NDJSON (one record per line) and fsynced
 * before the write is acknowledged; the acknowledged byte offset is saved with the checkpoint. On start it
 * cuts the file back to the last saved offset, removing whatever was written after the last checkpoint,
 * because those records will be fetched and written again.
 * Buffering: none beyond the batch being written. Appends across runs; a failed write is cut back to the last
 * acknowledged offset before the pipeline retries it, so the file only ever holds whole lines.
 * Emits: each record as the bytes Microsoft sent, unchanged, followed by a line feed (a record the API
 * pretty-printed across lines is compacted to one, nothing inside its strings changing; see
 * connector/api/content-records.ts).
 * Position: the byte offset at which the file ends after the acknowledged write.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { mkdirSync } from 'node:fs';
import { ConfigError, ConnectorError } from '../errors.ts';
import type { Logger } from '../status/log.ts';
import type { ComponentReporter } from '../status/telemetry.ts';
import type { Sink, SinkBatch, SinkPosition } from './sink.ts';
import { LineBuffer, ndjson } from './ndjson.ts';

export class FileSink implements Sink {
  readonly name: string;
  readonly #path: string;
  readonly #telemetry: ComponentReporter | undefined;
  readonly #logger: Logger | undefined;
  #file: FileHandle | undefined;
  #offset = 0;
  readonly #lines = new LineBuffer();

  constructor(path: string, options: { telemetry?: ComponentReporter; logger?: Logger } = {}) {
    if (path.trim() === '') throw new ConfigError('--sink', 'file: needs a path', 'e.g. --sink file:/var/log/o365/audit.ndjson');
    this.#path = resolve(path);
    this.name = `file:${this.#path}`;
    this.#telemetry = options.telemetry;
    this.#logger = options.logger;
  }

  async open(resumeFrom: SinkPosition | undefined): Promise<void> {
    mkdirSync(dirname(this.#path), { recursive: true });
    this.#file = await open(this.#path, 'a+', 0o640);
    const size = (await this.#file.stat()).size;
    if (typeof resumeFrom === 'number' && resumeFrom < size) {
      await this.#file.truncate(resumeFrom);
      await this.#file.sync();
      this.#logger?.warn({ component: 'sink', sink: this.name, cutBytes: size - resumeFrom }, 'cut records written after the last checkpoint; they will be written again');
      this.#offset = resumeFrom;
    } else {
      if (typeof resumeFrom === 'number' && resumeFrom > size) {
        this.#logger?.warn({ component: 'sink', sink: this.name, expected: resumeFrom, size }, 'the file is shorter than at the last checkpoint: it was truncated or rotated by someone else');
      }
      this.#offset = size;
    }
  }

  position(): SinkPosition {
    return this.#offset;
  }

  async write(batch: SinkBatch): Promise<SinkPosition> {
    if (!this.#file) throw new ConnectorError('SINK_CLOSED', `${this.name} is not open`);
    if (batch.records.length === 0) return this.#offset;
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
    return this.#offset;
  }

  async close(): Promise<void> {
    await this.#file?.close();
    this.#file = undefined;
  }
}
