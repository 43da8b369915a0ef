/**
 * Progress on a terminal: while `run` collects with stderr on a TTY, one live line per content type at the bottom
 * of the terminal (where its range starts, how far delivery has got and what share of the range that is, records this
 * run, records/s, ETA to caught-up); log lines still scroll above it. Nothing of it when stderr is not a TTY.
 * How far it has got is the newest blob (contentCreated) delivered, or the checkpoint when that is further: the
 * checkpoint alone moves only when a whole pass ends, which in a backfill is its end. The ETA is that position's pace
 * since this run first moved it.
 */
import type { ApiRate } from '../core/commit.ts';
import type { CollectedType } from '../../contract/content-types.ts';

export interface ProgressStream {
  write(text: string): boolean;
  readonly isTTY?: boolean;
  readonly columns?: number;
}

interface Line {
  coveredFrom: number | undefined;
  checkpoint: number | undefined;
  /** The newest contentCreated delivered by this run's live passes. */
  reached: number | undefined;
  records: number;
  /** Samples for the record rate: [when, records]. */
  readonly samples: Array<[number, number]>;
  /** When this run first saw the position, and where it was: the ETA's pace is measured from there. */
  first: [number, number] | undefined;
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
    for (const contentType of contentTypes) this.#lines.set(contentType, { coveredFrom: undefined, checkpoint: undefined, reached: undefined, records: 0, samples: [], first: undefined });
  }

  /** A commit of `contentType`: records it added, and where its checkpoint (and the covered range) stands. */
  update(contentType: CollectedType, change: { records: number; checkpoint: number | undefined; coveredFrom?: number | undefined; reached?: number | undefined }): void {
    const line = this.#lines.get(contentType);
    if (!line) return;
    line.records += change.records;
    line.checkpoint = change.checkpoint ?? line.checkpoint;
    line.coveredFrom ??= change.coveredFrom;
    if (change.reached !== undefined) line.reached = Math.max(line.reached ?? change.reached, change.reached);
    const position = positionOf(line);
    if (position !== undefined) line.first ??= [this.#now(), position];
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
    line.samples.push([now, line.records]);
    while (line.samples.length > 2 && line.samples[0]![0] < now - windowMs) line.samples.shift();
    const [then, recordsThen] = line.samples[0]!;
    const seconds = (now - then) / 1000;
    const rate = seconds > 0 ? (line.records - recordsThen) / seconds : 0;
    const position = positionOf(line);
    const target = now - this.#lagMs;
    let where = 'starting';
    let eta = '-';
    if (position !== undefined) {
      const from = Math.min(line.coveredFrom ?? position, position);
      const caughtUp = target - position <= 60_000;
      const share = caughtUp ? 100 : Math.min(99, Math.floor(((position - from) / (target - from)) * 100));
      where = `${minuteOf(from)} → ${minuteOf(position)} ${String(share).padStart(3)}%`;
      const [since, start] = line.first ?? [now, position];
      const pace = now > since ? (position - start) / (now - since) : 0;
      eta = caughtUp ? 'caught up' : pace > 0 ? `ETA ${duration((target - position) / pace / 1000)}` : 'ETA -';
    }
    return `${contentType.padEnd(26)} ${where.padEnd(40)} ${line.records.toLocaleString('en-US').padStart(11)} records ${Math.round(rate).toLocaleString('en-US').padStart(7)}/s  ${eta}`;
  }
}

/** How far a content type has got: the newest blob delivered, or its checkpoint when further. */
function positionOf(line: Line): number | undefined {
  if (line.reached === undefined) return line.checkpoint;
  return line.checkpoint === undefined ? line.reached : Math.max(line.reached, line.checkpoint);
}

function minuteOf(ms: number): string {
  return new Date(ms).toISOString().slice(0, 16).replace('T', ' ');
}

function duration(seconds: number): string {
  if (seconds < 90) return `${Math.round(seconds)}s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)}m`;
  return `${(seconds / 3600).toFixed(1)}h`;
}
