/**
 * What the status page shows, read from the running store: the fleet's report as `status` makes it, at most one
 * read per `maxAgeMs` however many people look (a page of 2,000 tenants is rendered from it, not from the store),
 * with each tenant's secret expiry from its configuration, and every unit's lag sampled into the history.
 */
import { unitName } from '../../core/commit.ts';
import type { StateDatabase } from '../../state/store.ts';
import { buildFleetReport } from '../status-report.ts';
import { LagHistory, lagSampleIntervalMs } from './lag-history.ts';
import type { StatusPageView } from './render.ts';

export interface PageTenant {
  readonly tenant: string;
  readonly domain?: string | undefined;
  readonly secretExpiresAt?: Date | undefined;
}

export interface StatusPageSources {
  /** The running store; undefined until it is open. */
  readonly database: () => StateDatabase | undefined;
  readonly stalledAfterSeconds: number;
  /** The tenants this process knows from their configuration. */
  readonly tenants: () => readonly PageTenant[];
  readonly now?: () => Date;
}

/** The page asks its browser to load it again this often. */
export const pageRefreshSeconds = 30;

export class StatusPageSource {
  readonly history: LagHistory;
  readonly #sources: StatusPageSources;
  readonly #maxAgeMs: number;
  #last: StatusPageView | undefined;
  #pending: Promise<StatusPageView | undefined> | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(sources: StatusPageSources, options: { maxAgeMs?: number; history?: LagHistory } = {}) {
    this.#sources = sources;
    this.#maxAgeMs = options.maxAgeMs ?? 10_000;
    this.history = options.history ?? new LagHistory();
  }

  /** The fleet now (a report younger than `maxAgeMs` is reused); undefined while the store is not open. */
  view(): Promise<StatusPageView | undefined> {
    const now = this.#now();
    if (this.#last && now.getTime() - this.#last.at.getTime() < this.#maxAgeMs) return Promise.resolve(this.#last);
    this.#pending ??= this.#read().finally(() => { this.#pending = undefined; });
    return this.#pending;
  }

  /** Samples the lags on a timer, whether or not anyone looks (the history must be there when someone does). */
  start(): void {
    const sample = () => { this.view().catch(() => {}); };
    sample();
    this.#timer = setInterval(sample, lagSampleIntervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }

  async #read(): Promise<StatusPageView | undefined> {
    const database = this.#sources.database();
    if (!database) return undefined;
    const known = this.#sources.tenants();
    const domains = new Map<string, string>();
    const secretExpiry = new Map<string, Date>();
    for (const tenant of known) {
      if (tenant.domain) domains.set(tenant.tenant.toLowerCase(), tenant.domain);
      if (tenant.secretExpiresAt) secretExpiry.set(tenant.tenant, tenant.secretExpiresAt);
    }
    // Read inside a running connector, the store's claims are live whatever the store: this process's own (a state
    // directory), or every worker's (PostgreSQL).
    const report = await buildFleetReport(database, { domains, liveHolders: true, stalledAfterSeconds: this.#sources.stalledAfterSeconds });
    const at = this.#now();
    const units = report.tenants.flatMap((tenant) => tenant.contentTypes.map((row) => [unitName({ tenant: tenant.tenant, contentType: row.contentType }), row.lagSeconds] as const));
    if (this.history.record(at, units)) this.history.keepOnly(new Set(units.map(([unit]) => unit)));
    this.#last = { report, at, secretExpiry, history: this.history, refreshSeconds: pageRefreshSeconds };
    return this.#last;
  }

  #now(): Date {
    return (this.#sources.now ?? (() => new Date()))();
  }
}
