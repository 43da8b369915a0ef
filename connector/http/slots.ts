/** One caller in line: resolved when served, rejected with its signal's reason when that fires first. */
interface Waiter<T> {
  readonly resolve: (value: T) => void;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
}

/**
 * Callers waiting their turn, first come, first served, without shifting the array on every turn; one whose signal
 * fires leaves the line (then `onLeave` runs, so that the owner can serve the next).
 */
export class WaitingLine<T> {
  readonly #items: Array<Waiter<T>> = [];
  #head = 0;
  readonly #onLeave: (() => void) | undefined;

  constructor(onLeave?: () => void) {
    this.#onLeave = onLeave;
  }

  get length(): number {
    return this.#items.length - this.#head;
  }

  /** Joins the line; rejects at once when the signal already fired. */
  wait(signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const waiter: Waiter<T> = {
        resolve,
        signal,
        onAbort: () => {
          const index = this.#items.indexOf(waiter, this.#head);
          if (index >= 0) this.#items.splice(index, 1);
          reject(signal!.reason);
          this.#onLeave?.();
        },
      };
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
      this.#items.push(waiter);
    });
  }

  /** Hands `value` to the first in line (there must be one). */
  serve(value: T): void {
    const waiter = this.#items[this.#head]!;
    this.#head += 1;
    // Compact now and then instead of shifting on every turn.
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items.splice(0, this.#head);
      this.#head = 0;
    }
    waiter.signal?.removeEventListener('abort', waiter.onAbort);
    waiter.resolve(value);
  }
}

/** A fixed number of slots (a semaphore): taken first come, first served, given back with `release`. */
export class Slots {
  #free: number;
  readonly #line = new WaitingLine<void>();

  constructor(size: number) {
    this.#free = Math.max(1, size);
  }

  /** Resolves once a slot is this caller's; rejects with the signal's reason if it fires first. */
  async acquire(signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    if (this.#free > 0 && this.#line.length === 0) {
      this.#free -= 1;
      return;
    }
    await this.#line.wait(signal);
  }

  release(): void {
    if (this.#line.length > 0) this.#line.serve();
    else this.#free += 1;
  }
}
