/**
 * Prometheus metrics of a run (`run --listen`). What `status` shows comes from the state's cursors, and so do the
 * metrics for it: they are read from the running store at each scrape (records delivered, duplicates, expired and
 * late blobs, checkpoint lag, collection active, last sweep), never counted a second time. What the state does not
 * hold is counted in the process: API answers by operation and code, sink errors (from the telemetry the sinks
 * report to), and Node's own process metrics.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ApiRate } from '../core/commit.ts';
import type { CollectedType } from '../../contract/content-types.ts';
import type { StateStore } from '../state/store.ts';
import { buildStatusReport, type StatusReport } from './status-report.ts';
import type { RunObserver, Telemetry } from '../observe/telemetry.ts';
import { ocsfTransformComponent } from '../sinks/ocsf/ocsf-sink.ts';

/** One tenant whose state the metrics read. */
export interface MetricsTenant {
  readonly tenant: string;
  /** The tenant's view of the running store. */
  readonly store: StateStore;
  readonly secretExpiresAt: Date | undefined;
  /** Where the tenant's request rate stands now (the adaptive budget), when its API client is running. */
  readonly apiRate?: ApiRate | undefined;
  /** Only these content types (a fleet worker reports the units it holds); all of the tenant's when absent. */
  readonly contentTypes?: ReadonlySet<CollectedType> | undefined;
}

export interface MetricsSources {
  /** The tenants collected now (one, unless a fleet); none until the store is open (the state's figures are absent then). */
  readonly tenants: () => readonly MetricsTenant[];
  /** The tenant of counts that name none (a single-tenant run's). */
  readonly defaultTenant?: string | undefined;
  readonly telemetry: Telemetry;
  readonly sinkNames: readonly string[];
  readonly now?: () => Date;
  /** Why the run's collection is stalled now (stall-watch.ts): while it is, no unit counts as active. */
  readonly stalled?: (() => readonly string[]) | undefined;
  /** This worker's name and how many units it holds now (the fleet's share of each worker). */
  readonly worker?: { readonly name: string; readonly unitsHeld: () => number } | undefined;
  /** Fleet mode: how many `*.json` files of the tenants directory cannot be used now. */
  readonly unusableTenantFiles?: (() => number) | undefined;
}

type TenantReport = StatusReport & { readonly tenant: string };

/** The state's figures for one scrape: every state-derived metric of that scrape reads the same reports. */
class ReportOfScrape {
  readonly #sources: MetricsSources;
  #pending: Promise<TenantReport[]> | undefined;

  constructor(sources: MetricsSources) {
    this.#sources = sources;
  }

  get(): Promise<TenantReport[]> {
    const sources = this.#sources;
    this.#pending ??= Promise.all(sources.tenants().map(async ({ tenant, store, contentTypes }) => {
      const report = await buildStatusReport({ stateDir: store.location, store, ...(sources.now ? { now: sources.now } : {}) });
      return { ...report, tenant, contentTypes: contentTypes ? report.contentTypes.filter((row) => contentTypes.has(row.contentType)) : report.contentTypes };
    })).finally(() => setImmediate(() => { this.#pending = undefined; }));
    return this.#pending;
  }
}

type Row = StatusReport['contentTypes'][number];
type Values = Array<[Record<string, string>, number]>;
/** Every (tenant, content type) row of a scrape. */
const rowsOf = (reports: readonly TenantReport[]) => reports.flatMap((report) => report.contentTypes.map((row) => ({ tenant: report.tenant, row })));

export class ConnectorMetrics implements RunObserver {
  readonly registry = new Registry();
  readonly #listed: Counter<'tenant' | 'content_type'>;
  readonly #fetched: Counter<'tenant' | 'content_type'>;
  readonly #sinkBatch: Histogram<'sink'>;
  readonly #apiRequests: Counter<'tenant' | 'operation' | 'code'>;
  readonly #throttled: Counter<'tenant'>;
  readonly #historyThrottled: Counter<'tenant'>;
  readonly #tenant: string;

  constructor(sources: MetricsSources) {
    const { registry } = this;
    this.#tenant = sources.defaultTenant ?? '';
    const report = new ReportOfScrape(sources);
    collectDefaultMetrics({ register: registry });

    /**
     * A metric whose values are read at each scrape and replace the last scrape's: a counter's are running totals
     * kept elsewhere (the state's only grow, across restarts too).
     */
    const scraped = (kind: 'counter' | 'gauge', name: string, help: string, labelNames: readonly string[], values: () => Values | Promise<Values>) => {
      async function collect(this: Counter | Gauge): Promise<void> {
        const read = await values();
        this.reset();
        for (const [labels, value] of read) {
          if (this instanceof Counter) this.inc(labels, value);
          else this.set(labels, value);
        }
      }
      const configuration = { name, help, labelNames, registers: [registry], collect };
      if (kind === 'counter') new Counter(configuration);
      else new Gauge(configuration);
    };
    const fromState = (pick: (r: TenantReport[]) => Values) => async () => pick(await report.get());
    const perType = (pick: (row: Row) => number | undefined) => fromState((r) => rowsOf(r).flatMap(({ tenant, row }): Values => {
      const value = pick(row);
      return value === undefined ? [] : [[{ tenant, content_type: row.contentType }, value]];
    }));
    const typeLabels = ['tenant', 'content_type'];

    // Every sink acknowledges every record before a checkpoint moves: each has received what the state counts.
    scraped('counter', 'o365_records_delivered_total', 'Audit records delivered, acknowledged by the sink (from the state, as status shows).', ['tenant', 'content_type', 'sink'],
      fromState((r) => rowsOf(r).flatMap(({ tenant, row }) => sources.sinkNames.map((sink): Values[number] => [{ tenant, content_type: row.contentType, sink }, row.recordsDelivered]))));
    scraped('counter', 'o365_records_duplicate_total', 'Records dropped as repeats of records delivered before.', typeLabels, perType((row) => row.duplicatesDropped));
    scraped('counter', 'o365_blobs_delivered_total', 'Content blobs whose every record was delivered.', typeLabels, perType((row) => row.blobsDelivered));
    scraped('counter', 'o365_blobs_expired_total', 'Content blobs that expired (AF20051) before they could be fetched: their records are lost at the source.', typeLabels, perType((row) => row.expiredCount));
    scraped('counter', 'o365_blobs_late_total', 'Content blobs a sweep found after their window had been listed (Microsoft listed them late).', typeLabels, perType((row) => row.lateBlobs));
    scraped('gauge', 'o365_checkpoint_lag_seconds', 'Server time now less the checkpoint (everything before it is delivered).', typeLabels, perType((row) => row.lagSeconds));
    scraped('counter', 'o365_history_records_total', 'Records the audit search returned for history beyond the API\'s 7 days (before de-duplication against what the API delivered).', typeLabels, perType((row) => row.history?.records));
    scraped('counter', 'o365_history_queries_total', 'Audit search queries created for history beyond the API\'s 7 days.', typeLabels, perType((row) => row.history?.queries));
    scraped('gauge', 'o365_history_pending_seconds', 'History beyond the API\'s 7 days still to read from the audit search (the length of the ranges to do).', typeLabels,
      perType((row) => (row.history === undefined ? undefined : row.history.todo.reduce((sum, [from, to]) => sum + (to - from), 0) / 1000)));
    scraped('gauge', 'o365_history_failing', '1 when the last history pass of the unit (the audit search, beyond the API\'s 7 days) failed, 0 when it did not; absent for units with no history to read.', typeLabels,
      perType((row) => (row.history === undefined ? undefined : row.history.error ? 1 : 0)));
    const stalled = () => (sources.stalled?.().length ?? 0) > 0;
    scraped('gauge', 'o365_collection_active', '1 when the content type is Active (collected, not lagging, no failure) and the run is not stalled (--stalled-after), else 0: the Collection Status.', typeLabels, perType((row) => (row.health === 'Active' && !stalled() ? 1 : 0)));
    scraped('gauge', 'o365_blobs_held', 'Content blobs whose fetch failed in the last pass: they hold the checkpoint until fetched.', typeLabels, perType((row) => row.heldBlobs));
    scraped('gauge', 'o365_blob_max_lateness_seconds', 'The largest lateness of a blob a sweep found (discovery less contentCreated).', typeLabels, perType((row) => row.maxLatenessSeconds));
    scraped('gauge', 'o365_last_sweep_timestamp_seconds', 'When the last sweep over the whole covered range completed (Unix time).', typeLabels, perType((row) => (row.lastSweepAt === undefined ? undefined : Date.parse(row.lastSweepAt) / 1000)));

    this.#listed = new Counter({ name: 'o365_blobs_listed_total', help: 'Content blobs listed that were not delivered before (counted by this process).', labelNames: typeLabels, registers: [registry] });
    this.#fetched = new Counter({ name: 'o365_blobs_fetched_total', help: 'Content blobs fetched (counted by this process).', labelNames: typeLabels, registers: [registry] });
    this.#sinkBatch = new Histogram({ name: 'o365_sink_batch_seconds', help: 'Time from handing a batch to a sink to its acknowledgement, retries included.', labelNames: ['sink'], buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registers: [registry] });
    this.#apiRequests = new Counter({ name: 'o365_api_requests_total', help: 'Management Activity API answers by operation and code (HTTP status, AF code or transport error); the audit search\'s (history) as operations auditSearch.query, auditSearch.poll and auditSearch.records.', labelNames: ['tenant', 'operation', 'code'], registers: [registry] });
    this.#historyThrottled = new Counter({ name: 'o365_history_throttled_total', help: 'Microsoft Graph 429 answers to the audit search (history): each call waited as asked and was repeated.', labelNames: ['tenant'], registers: [registry] });
    this.#throttled = new Counter({ name: 'o365_api_throttled_total', help: 'AF429 answers (the tenant quota was spent; each call was repeated, none failed).', labelNames: ['tenant'], registers: [registry] });
    scraped('gauge', 'o365_api_rate_per_minute', 'Requests a minute the connector asks of the tenant\'s quota now: just under what the service took when it last throttled (AF429), else up to --requests-per-minute.', ['tenant'],
      () => sources.tenants().flatMap(({ tenant, apiRate }): Values => (apiRate ? [[{ tenant }, apiRate.perMinute]] : [])));
    if (sources.defaultTenant !== undefined) this.#throttled.inc({ tenant: sources.defaultTenant }, 0);

    scraped('counter', 'o365_sink_errors_total', 'Sink errors by sink and kind (the error code): each made the pipeline hold the batch and retry.', ['sink', 'kind'],
      () => sources.telemetry.snapshot().filter((component) => component.kind === 'sink')
        .flatMap((component) => Object.entries(component.errorsByCode).map(([kind, count]): Values[number] => [{ sink: component.name.replace(/^sink:/, ''), kind }, count])));
    // OCSF events by class, and how many no family mapped (format=ocsf sinks; the transform's tallies, see ocsf-sink.ts).
    const ocsfTallies = () => sources.telemetry.snapshot().find((component) => component.name === ocsfTransformComponent)?.tallies ?? {};
    scraped('counter', 'o365_ocsf_records_total', 'Records mapped to OCSF events for format=ocsf sinks, by OCSF class (counted by this process, once per batch).', ['class_uid', 'class_name'],
      () => Object.entries(ocsfTallies()).flatMap(([key, count]): Values => {
        const match = /^class:(\d+):(.*)$/.exec(key);
        return match ? [[{ class_uid: match[1]!, class_name: match[2]! }, count]] : [];
      }));
    scraped('counter', 'o365_ocsf_fallback_total', 'Records that no OCSF family mapped, emitted as generic API Activity (counted by this process).', [], () => [[{}, ocsfTallies()['fallback'] ?? 0]]);
    scraped('counter', 'o365_ocsf_mapping_errors_total', 'Records whose OCSF family mapping failed on an unexpected shape, emitted as generic API Activity (part of the fallbacks; counted by this process).', [],
      () => [[{}, ocsfTallies()['mapping-error'] ?? 0]]);
    scraped('gauge', 'o365_client_secret_expiry_timestamp_seconds', 'When the client secret in the outputs expires (Unix time); absent for credentials without a secret (federated, managed identity).', ['tenant'],
      () => sources.tenants().flatMap(({ tenant, secretExpiresAt }): Values => (secretExpiresAt ? [[{ tenant }, secretExpiresAt.getTime() / 1000]] : [])));
    const worker = sources.worker;
    if (worker) {
      scraped('gauge', 'o365_units_held', 'Units (tenant × content type) this worker holds now: a worker holding none while others hold many is idle.', ['worker'], () => [[{ worker: worker.name }, worker.unitsHeld()]]);
    }
    const unusable = sources.unusableTenantFiles;
    if (unusable) {
      scraped('gauge', 'o365_tenant_files_unusable', 'Files of the tenants directory (*.json) that cannot be used: unreadable, not a regular file, not an outputs file, or a second file of one tenant (their tenants are not collected, or carry on with their last good file).', [],
        () => [[{}, unusable()]]);
    }
  }

  listed(contentType: CollectedType, tenant = this.#tenant): void {
    this.#listed.inc({ tenant, content_type: contentType });
  }

  fetched(contentType: CollectedType, tenant = this.#tenant): void {
    this.#fetched.inc({ tenant, content_type: contentType });
  }

  sinkBatch(sink: string, seconds: number): void {
    this.#sinkBatch.observe({ sink }, seconds);
  }

  /** One answer of the API (or a transport failure) to an operation such as `subscriptions/content` or `audit`. */
  apiAnswered(operation: string, code: string, tenant = this.#tenant): void {
    this.#apiRequests.inc({ tenant, operation, code });
    if (code === 'AF429') this.#throttled.inc({ tenant });
    if (code === 'GRAPH_THROTTLED' && operation.startsWith('auditSearch')) this.#historyThrottled.inc({ tenant });
  }
}
