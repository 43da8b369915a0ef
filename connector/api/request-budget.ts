/**
 * Bounds what the connector asks of the tenant's quota: a token bucket of requests per minute and a cap on
 * requests in flight. Every API call takes a slot first, so bursts from concurrent fetchers queue here (first
 * come, first served) instead of turning into AF429 answers. Waiters are woken one at a time, never all at once.
 */
export interface RequestBudgetOptions {
  readonly requestsPerMinute: number;
  readonly maxInFlight: number;
  /** Requests that may start back to back after an idle spell (default: a second's worth, at least 1). */
  readonly burst?: number;
  readonly now?: () => number;
}

interface Waiter {
  readonly grant: (release: () => void) => void;
  readonly reject: (reason: unknown) => void;
  readonly signal: AbortSignal | undefined;
  readonly onAbort: () => void;
}

export class RequestBudget {
  readonly #ratePerMs: number;
  readonly #burst: number;
  readonly #maxInFlight: number;
  readonly #now: () => number;
  readonly #queue: Waiter[] = [];
  #head = 0;
  #tokens: number;
  #updated: number;
  #inFlight = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: RequestBudgetOptions) {
    if (!(options.requestsPerMinute > 0) || !(options.maxInFlight >= 1)) throw new RangeError('requestsPerMinute and maxInFlight must be positive');
    this.#ratePerMs = options.requestsPerMinute / 60_000;
    this.#burst = Math.max(1, options.burst ?? Math.ceil(options.requestsPerMinute / 60));
    this.#maxInFlight = Math.floor(options.maxInFlight);
    this.#now = options.now ?? Date.now;
    this.#tokens = this.#burst;
    this.#updated = this.#now();
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get waiting(): number {
    return this.#queue.length - this.#head;
  }

  /** Resolves with a release function once a request may start; rejects with the signal's reason on abort. */
  acquire(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        grant: resolve,
        reject,
        signal,
        onAbort: () => {
          const index = this.#queue.indexOf(waiter, this.#head);
          if (index >= 0) this.#queue.splice(index, 1);
          reject(signal!.reason);
          // Nobody left to wake: do not keep the process alive for the refill timer.
          if (this.waiting === 0 && this.#timer) {
            clearTimeout(this.#timer);
            this.#timer = undefined;
          }
          this.#pump();
        },
      };
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
      this.#queue.push(waiter);
      this.#pump();
    });
  }

  #release(): void {
    this.#inFlight -= 1;
    this.#pump();
  }

  #pump(): void {
    while (this.#head < this.#queue.length && this.#inFlight < this.#maxInFlight) {
      const now = this.#now();
      this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#updated) * this.#ratePerMs);
      this.#updated = now;
      if (this.#tokens < 1) {
        this.#wakeWhenRefilled();
        break;
      }
      this.#tokens -= 1;
      this.#inFlight += 1;
      const waiter = this.#queue[this.#head]!;
      this.#head += 1;
      waiter.signal?.removeEventListener('abort', waiter.onAbort);
      let released = false;
      waiter.grant(() => {
        if (released) return;
        released = true;
        this.#release();
      });
    }
    // Compact now and then instead of shifting on every grant.
    if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue.splice(0, this.#head);
      this.#head = 0;
    }
  }

  #wakeWhenRefilled(): void {
    if (this.#timer) return;
    const wait = Math.max(1, Math.ceil((1 - this.#tokens) / this.#ratePerMs));
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#pump();
    }, wait);
  }
}
