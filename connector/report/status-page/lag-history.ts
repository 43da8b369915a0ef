/**
 * The lag of every unit over the last hours, for the status page's sparklines: a ring of samples, a new one at most
 * once per interval (a reading within the interval replaces the newest, so the newest is always the last reading),
 * one column of lags per unit (NaN where the unit had none). Bounded: a fleet of 2,000 tenants with
 * five content types keeps 10,000 × `capacity` 4-byte numbers, about 7 MB at the defaults, whatever the run's length.
 */

/** One sample every two minutes, six hours of them. */
export const lagSampleIntervalMs = 120_000;
export const lagSampleCapacity = 180;

export interface LagPoint {
  /** Unix time, ms. */
  readonly at: number;
  readonly lagSeconds: number;
}

export class LagHistory {
  readonly #capacity: number;
  readonly #intervalMs: number;
  readonly #times: Float64Array;
  /** When each sample's slot was opened (its time is its last reading's). */
  readonly #opened: Float64Array;
  readonly #lags = new Map<string, Float32Array>();
  /** Samples taken so far (the ring's next slot is `#taken % capacity`). */
  #taken = 0;

  constructor(options: { capacity?: number; intervalMs?: number } = {}) {
    this.#capacity = options.capacity ?? lagSampleCapacity;
    this.#intervalMs = options.intervalMs ?? lagSampleIntervalMs;
    this.#times = new Float64Array(this.#capacity);
    this.#opened = new Float64Array(this.#capacity);
  }

  /**
   * Every unit's lag at `at`: a new sample when the newest was opened an interval ago or more (then true), else the
   * newest sample replaced.
   */
  record(at: Date, lags: Iterable<readonly [unit: string, lagSeconds: number | undefined]>): boolean {
    const time = at.getTime();
    const opening = this.#taken === 0 || time - this.#opened[(this.#taken - 1) % this.#capacity]! >= this.#intervalMs;
    if (opening) this.#taken += 1;
    const slot = (this.#taken - 1) % this.#capacity;
    if (opening) this.#opened[slot] = time;
    this.#times[slot] = time;
    for (const column of this.#lags.values()) column[slot] = Number.NaN;
    for (const [unit, lag] of lags) {
      let column = this.#lags.get(unit);
      if (!column) this.#lags.set(unit, (column = new Float32Array(this.#capacity).fill(Number.NaN)));
      column[slot] = lag ?? Number.NaN;
    }
    return opening;
  }

  /** The unit's samples, oldest first (the ones where it had a lag). */
  of(unit: string): LagPoint[] {
    const column = this.#lags.get(unit);
    if (!column) return [];
    const points: LagPoint[] = [];
    const count = Math.min(this.#taken, this.#capacity);
    for (let i = this.#taken - count; i < this.#taken; i += 1) {
      const slot = i % this.#capacity;
      const lag = column[slot]!;
      if (!Number.isNaN(lag)) points.push({ at: this.#times[slot]!, lagSeconds: lag });
    }
    return points;
  }

  /** Forgets units that are no longer reported (a tenant removed). */
  keepOnly(units: ReadonlySet<string>): void {
    for (const unit of this.#lags.keys()) if (!units.has(unit)) this.#lags.delete(unit);
  }
}
