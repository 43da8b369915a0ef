/**
 * Progress on a terminal: while `run` collects with stderr on a TTY, one live line per content type at the bottom
 * of the terminal (range covered, records this run, records/s, ETA to caught-up); log lines still scroll above it.
 * Nothing of it when stderr is not a TTY: logs stay JSON lines only.
 */
import type { ApiRate } from '../api/activity-api.ts';
import type { CollectedType } from '../api/content-types.ts';

export interface ProgressStream {
  write(text: string): boolean;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

interface Line {
  coveredFrom: number | undefined;
  checkpoint: number | undefined;
  records: number;
  /** Samples for the rates: [when, records, checkpoint]. */
  readonly samples: Array<[number, number, number | undefined]>;
}

const windowMs = 10_000;

export class ProgressDisplay {
  readonly #stream: ProgressStream;
  readonly #now: () => number;
  readonly #lagMs: number;
  readonly #lines = new Map<CollectedType, Line>();
  readonly #rate: (() => ApiRate | undefined) | undefined;
  #drawn = 0;
  #timer: NodeJS.Timeout | undefined;

  /** `lagMs`: how far behind server time a caught-up checkpoint stays (the safety lag). */
  /** `rate`: the tenant's request rate, shown on a line of its own once the tenant has been throttled. */
  constructor(stream: ProgressStream, contentTypes: readonly CollectedType[], options: { lagMs: number; now?: () => number; rate?: () => ApiRate | undefined }) {
    this.#stream = stream;
    this.#rate = options.rate;
    this.#now = options.now ?? Date.now;
    this.#lagMs = options.lagMs;
    for (const contentType of contentTypes) this.#lines.set(contentType, { coveredFrom: undefined, checkpoint: undefined, records: 0, samples: [] });
  }

  /** A commit of `contentType`: records it added, and where its checkpoint (and the covered range) stands. */
  update(contentType: CollectedType, change: { records: number; checkpoint: number | undefined; coveredFrom?: number | undefined }): void {
    const line = this.#lines.get(contentType);
    if (!line) return;
    line.records += change.records;
    line.checkpoint = change.checkpoint ?? line.checkpoint;
    line.coveredFrom ??= change.coveredFrom;
  }

  start(everyMs = 1000): void {
    this.#timer = setInterval(() => this.draw(), everyMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.draw();
    this.#drawn = 0; // the last state stays on the terminal
  }

  /** Removes the lines drawn (before a log line is written above them). */
  clear(): void {
    if (this.#drawn === 0) return;
    this.#stream.write(`\x1b[${this.#drawn}F\x1b[J`);
    this.#drawn = 0;
  }

  /** Draws (again) one line per content type. */
  draw(): void {
    this.clear();
    const now = this.#now();
    const width = Math.max(40, (this.#stream.columns || 120) - 1); // a pty may report 0 columns
    const text = [...this.#lines].map(([contentType, line]) => this.#render(contentType, line, now).slice(0, width));
    const rate = this.#rate?.();
    if (rate?.learnedPerMinute !== undefined) {
      text.push(`${rate.throttledNow ? 'throttled (AF429)' : 'was throttled'}: asking ${rate.perMinute.toLocaleString('en-US')} requests/min, the service took about ${rate.learnedPerMinute.toLocaleString('en-US')}/min; ${rate.throttled.toLocaleString('en-US')} refused call(s) repeated`.slice(0, width));
    }
    this.#stream.write(`${text.join('\n')}\n`);
    this.#drawn = text.length;
  }

  #render(contentType: CollectedType, line: Line, now: number): string {
    line.samples.push([now, line.records, line.checkpoint]);
    while (line.samples.length > 2 && line.samples[0]![0] < now - windowMs) line.samples.shift();
    const [then, recordsThen] = line.samples[0]!;
    const seconds = (now - then) / 1000;
    const rate = seconds > 0 ? (line.records - recordsThen) / seconds : 0;
    // How fast the checkpoint moves, from the oldest sample that had one.
    const [since, , checkpointThen] = line.samples.find((sample) => sample[2] !== undefined) ?? [now, 0, undefined];
    const advanceSeconds = (now - since) / 1000;
    const range = line.checkpoint === undefined ? 'starting' : `${minuteOf(line.coveredFrom ?? line.checkpoint)} → ${minuteOf(line.checkpoint)}`;
    let eta = '-';
    if (line.checkpoint !== undefined) {
      const behind = now - this.#lagMs - line.checkpoint;
      const advance = checkpointThen !== undefined && advanceSeconds > 0 ? (line.checkpoint - checkpointThen) / advanceSeconds : 0;
      eta = behind <= 60_000 ? 'caught up' : advance > 0 ? `ETA ${duration(behind / advance)}` : 'ETA -';
    }
    return `${contentType.padEnd(26)} ${range.padEnd(35)} ${line.records.toLocaleString('en-US').padStart(11)} records ${Math.round(rate).toLocaleString('en-US').padStart(7)}/s  ${eta}`;
  }
}

function minuteOf(ms: number): string {
  return new Date(ms).toISOString().slice(0, 16).replace('T', ' ');
}

function duration(seconds: number): string {
  if (seconds < 90) return `${Math.round(seconds)}s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)}m`;
  return `${(seconds / 3600).toFixed(1)}h`;
}
