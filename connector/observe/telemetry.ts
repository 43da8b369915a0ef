/**
 * One instrumentation contract for every component (after Vector's component specification): each source,
 * transform and sink reports, per batch, what it received and sent (records and bytes), and errors tagged
 * with the stage they happened in and how many records they discarded. `status`, logs and metrics all read
 * the same counters, so "how far behind, what failed, did we drop anything" has one answer.
 */
import type { CollectedType } from '../../contract/content-types.ts';

export type ComponentKind = 'source' | 'transform' | 'sink';
export type Stage = 'receiving' | 'processing' | 'sending';

export interface ComponentError {
  readonly stage: Stage;
  /** Microsoft or connector error code, e.g. AF20051, AF429, ECONNRESET. */
  readonly code: string;
  readonly message: string;
  /** Records this error made us give up on (0 when the work is retried). */
  readonly discarded?: number;
}

export interface ComponentCounters {
  readonly name: string;
  readonly kind: ComponentKind;
  receivedRecords: number;
  receivedBytes: number;
  sentRecords: number;
  sentBytes: number;
  errors: number;
  discardedRecords: number;
  errorsByCode: Record<string, number>;
  /** What a component counts by a key of its own (the OCSF transform: records per class, and fallbacks). */
  tallies: Record<string, number>;
  lastError: (ComponentError & { readonly at: string }) | undefined;
}

export interface ComponentReporter {
  received(records: number, bytes: number): void;
  sent(records: number, bytes: number): void;
  error(error: ComponentError): void;
  /** Counts `count` under `key` (records per OCSF class, say); optional for components that count nothing else. */
  tally?(key: string, count: number): void;
}

/** What a collection tells the process's observers (metrics, the stall watch); the tenant when a fleet collects several. */
export interface RunObserver {
  /** Blobs listed (new ones: not delivered before). */
  listed(contentType: CollectedType, tenant?: string): void;
  fetched(contentType: CollectedType, tenant?: string): void;
  sinkBatch(sink: string, seconds: number): void;
  /** A sink did not acknowledge a batch (it is sent again). */
  sinkFailed?(sink: string, reason: string): void;
  /** A commit reached the state store. */
  committed?(): void;
}

export class Telemetry {
  readonly #components = new Map<string, ComponentCounters>();
  readonly #now: () => Date;

  constructor(options: { now?: () => Date } = {}) {
    this.#now = options.now ?? (() => new Date());
  }

  component(name: string, kind: ComponentKind): ComponentReporter {
    const c: ComponentCounters = this.#components.get(name) ?? {
      name, kind,
      receivedRecords: 0, receivedBytes: 0, sentRecords: 0, sentBytes: 0,
      errors: 0, discardedRecords: 0, errorsByCode: {}, tallies: {}, lastError: undefined,
    };
    this.#components.set(name, c);
    return {
      received: (records, bytes) => { c.receivedRecords += records; c.receivedBytes += bytes; },
      sent: (records, bytes) => { c.sentRecords += records; c.sentBytes += bytes; },
      tally: (key, count) => { c.tallies[key] = (c.tallies[key] ?? 0) + count; },
      error: (error) => {
        c.errors += 1;
        c.discardedRecords += error.discarded ?? 0;
        c.errorsByCode[error.code] = (c.errorsByCode[error.code] ?? 0) + 1;
        c.lastError = { ...error, at: this.#now().toISOString() };
      },
    };
  }

  snapshot(): ComponentCounters[] {
    return [...this.#components.values()].map((c) => structuredClone(c));
  }
}
