/**
 * Bounds what the connector asks of the tenant's quota: a token bucket of requests per minute and a cap on
 * requests in flight. Every API call acquires a slot first, so bursts from concurrent fetchers queue here
 * instead of turning into AF429 answers.
 */
export interface RequestBudgetOptions {
  readonly requestsPerMinute: number;
  readonly maxInFlight: number;
  readonly now?: () => number;
}

export class RequestBudget {
  readonly #ratePerMs: number;
  readonly #burst: number;
  readonly #maxInFlight: number;
  readonly #now: () => number;
  #tokens: number;
  #updated: number;
  #inFlight = 0;
  readonly #waiters: Array<() => void> = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(options: RequestBudgetOptions) {
    this.#ratePerMs = options.requestsPerMinute / 60_000;
    this.#burst = Math.max(1, Math.min(options.maxInFlight * 2, Math.ceil(options.requestsPerMinute / 60)));
    this.#maxInFlight = options.maxInFlight;
    this.#now = options.now ?? Date.now;
    this.#tokens = this.#burst;
    this.#updated = this.#now();
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  async acquire(signal?: AbortSignal): Promise<() => void> {
    for (;;) {
      signal?.throwIfAborted();
      this.#refill();
      if (this.#inFlight < this.#maxInFlight && this.#tokens >= 1) {
        this.#tokens -= 1;
        this.#inFlight += 1;
        let released = false;
        return () => {
          if (released) return;
          released = true;
          this.#inFlight -= 1;
          this.#wake();
        };
      }
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        if (this.#inFlight < this.#maxInFlight) this.#scheduleRefill();
        signal?.addEventListener('abort', () => resolve(), { once: true });
      });
    }
  }

  #refill(): void {
    const now = this.#now();
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#updated) * this.#ratePerMs);
    this.#updated = now;
  }

  #scheduleRefill(): void {
    if (this.#timer) return;
    const wait = Math.max(1, Math.ceil((1 - this.#tokens) / this.#ratePerMs));
    this.#timer = setTimeout(() => { this.#timer = undefined; this.#wake(); }, wait);
  }

  #wake(): void {
    const waiters = this.#waiters.splice(0);
    for (const wake of waiters) wake();
  }
}
