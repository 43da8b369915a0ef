/**
 * `status` from the state store alone (it works offline and while a connector runs): per content type the
 * subscription (when a live list is given), checkpoint, lag, last content seen, records delivered, expired
 * content and the last error; overall Active, Degraded or Inactive.
 */
import { collectedTypes, serviceHealth, type CollectedType } from '../../contract/content-types.ts';
import type { Subscription } from '../sources/activity-api/activity-api.ts';
import { openStateStoreReadOnly } from '../state/sqlite/store.ts';
import { type StateDatabase, type StateStore } from '../state/store.ts';
import { unitName, type ApiRateSample, type CursorState, type ExpiredContent, type LastError, type ServiceHealthSample } from '../core/commit.ts';
import type { HistoryState, Interval } from '../core/history.ts';

export type Health = 'Active' | 'Degraded' | 'Inactive';

export interface ContentTypeStatus {
  contentType: CollectedType;
  /** `enabled`, `disabled`, `not started`, or `unknown (offline)` without a live list; `none (Microsoft Graph)` for ServiceHealth. */
  subscription: string;
  checkpoint: string | undefined;
  lagSeconds: number | undefined;
  lastContentSeen: string | undefined;
  lastDeliveryAt: string | undefined;
  recordsDelivered: number;
  blobsDelivered: number;
  duplicatesDropped: number;
  expiredCount: number;
  /** The most recent expired blobs, newest last (at most 5). */
  lastExpired: ExpiredContent[];
  /** Blobs whose fetch failed in the last pass: they hold the checkpoint until fetched. */
  heldBlobs: number;
  /** Blobs the sweeps found after their window was listed (Microsoft listed them late), and the largest lateness. */
  lateBlobs: number;
  maxLatenessSeconds: number;
  /** When the last sweep of the whole covered range completed. */
  lastSweepAt: string | undefined;
  lastError: LastError | undefined;
  /** ServiceHealth: every service's health overview as last sampled from Microsoft Graph. */
  services?: ServiceHealthSample | undefined;
  /** Audit content types: history beyond the API's 7 days, read from the audit search. */
  history?: HistoryState | undefined;
  health: Health;
  /** Why the health is not Active, in words. */
  reasons: string[];
}

export interface StatusReport {
  overall: Health;
  stateDir: string;
  updatedAt: string | undefined;
  contentTypes: ContentTypeStatus[];
  /** The tenant's request rate as its latest commit saw it (throttling slows a tenant down, it never fails it). */
  apiRate?: ApiRateSample | undefined;
}

/**
 * Lag (now - checkpoint) beyond which a content type is Degraded. The checkpoint trails server time by the
 * safety lag (15 min) plus up to one poll interval; two hours means passes are failing or cannot keep up.
 */
export const lagThresholdSeconds = 2 * 3600;
/** Expired content counts against health for a day after it was found, then stays in the counts only. */
export const expiredRecentMs = 24 * 3_600_000;

export interface StatusReportOptions {
  readonly stateDir: string;
  /** The store to read the cursors from; without it, the state directory is opened read-only for the call. */
  readonly store?: StateStore;
  /** The cursors, when the caller has read them already (the fleet report reads each tenant's once). */
  readonly cursors?: Map<CollectedType, CursorState>;
  readonly subscriptions?: Subscription[];
  readonly now?: () => Date;
}

export async function buildStatusReport(options: StatusReportOptions): Promise<StatusReport> {
  const now = (options.now ?? (() => new Date()))();
  const states = await cursorsOf(options);
  const rows: ContentTypeStatus[] = [];
  let updatedAt: string | undefined;
  let apiRate: ApiRateSample | undefined;
  for (const contentType of collectedTypes) {
    const state = states.get(contentType);
    if (state?.apiRate && (!apiRate || state.apiRate.at > apiRate.at)) apiRate = state.apiRate;
    const live = options.subscriptions?.find((s) => s.contentType === contentType);
    if (!state && !live) continue;
    const graph = contentType === serviceHealth;
    if (state?.updatedAt && (!updatedAt || state.updatedAt > updatedAt)) updatedAt = state.updatedAt;
    const lagSeconds = state?.checkpoint ? Math.max(0, Math.round((now.getTime() - Date.parse(state.checkpoint)) / 1000)) : undefined;
    const subscription = graph ? 'none (Microsoft Graph)' : live ? (live.status ?? 'not started') : options.subscriptions ? 'not started' : 'unknown (offline)';
    const reasons: string[] = [];
    let health: Health = 'Active';
    if (!state?.checkpoint) {
      health = 'Inactive';
      reasons.push(state?.lastError ? 'never completed a pass' : 'never collected');
    } else if (live && live.status !== 'enabled') {
      health = 'Inactive';
      reasons.push(`subscription ${live.status ?? 'not started'}`);
    }
    if (state?.lastError) reasons.push(`last pass failed: ${state.lastError.code}`);
    if (state?.history?.error) reasons.push(`history: last pass failed: ${state.history.error.code}`);
    if ((state?.heldBlobs ?? 0) > 0) reasons.push(`${state!.heldBlobs} blob(s) held for retry`);
    const recentExpired = state?.expired.filter((e) => now.getTime() - Date.parse(e.detectedAt) < expiredRecentMs).length ?? 0;
    if (recentExpired > 0) reasons.push(`${recentExpired} blob(s) expired before they were fetched`);
    if ((lagSeconds ?? 0) > lagThresholdSeconds) reasons.push(`lag ${formatLag(lagSeconds)} beyond ${formatLag(lagThresholdSeconds)}`);
    if (health === 'Active' && reasons.length > 0) health = 'Degraded';
    rows.push({
      contentType, subscription, checkpoint: state?.checkpoint, lagSeconds, lastContentSeen: state?.lastContentSeen,
      lastDeliveryAt: state?.lastDeliveryAt, recordsDelivered: state?.recordsDelivered ?? 0, blobsDelivered: state?.blobsDelivered ?? 0,
      duplicatesDropped: state?.duplicatesDropped ?? 0, expiredCount: state?.expiredCount ?? 0, lastExpired: state?.expired.slice(-5) ?? [],
      heldBlobs: state?.heldBlobs ?? 0, lateBlobs: state?.lateBlobs ?? 0, maxLatenessSeconds: Math.round((state?.maxLatenessMs ?? 0) / 1000),
      lastSweepAt: state?.lastSweepAt, lastError: state?.lastError, ...(state?.serviceHealth ? { services: state.serviceHealth } : {}),
      ...(state?.history ? { history: state.history } : {}), health, reasons,
    });
  }
  // Subscriptions this state directory never collected (another connector's, or not run yet) are listed but
  // do not decide this connector's health.
  const collected = rows.filter((r) => states.has(r.contentType));
  return { overall: overallOf(collected), stateDir: options.stateDir, updatedAt, contentTypes: rows, ...(apiRate ? { apiRate } : {}) };
}

function overallOf(rows: readonly ContentTypeStatus[]): Health {
  if (rows.length === 0 || rows.every((r) => r.health === 'Inactive')) return 'Inactive';
  return rows.some((r) => r.health !== 'Active') ? 'Degraded' : 'Active';
}

async function cursorsOf(options: StatusReportOptions): Promise<Map<CollectedType, CursorState>> {
  if (options.cursors) return options.cursors;
  if (options.store) return options.store.cursors();
  const store = await openStateStoreReadOnly(options.stateDir);
  try {
    return await store.cursors();
  } finally {
    await store.close();
  }
}

export function formatLag(seconds: number | undefined): string {
  if (seconds === undefined) return '-';
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  if (seconds < 2 * 86_400) return `${(seconds / 3600).toFixed(1)}h`;
  return `${(seconds / 86_400).toFixed(1)}d`;
}

export function formatStatusReport(report: StatusReport): string {
  const lines = [`Overall: ${report.overall}   (state ${report.stateDir}, saved ${report.updatedAt ?? 'never'})`];
  if (report.contentTypes.length === 0) {
    lines.push('No content type has been collected yet: run `npx o365-connector run`.');
    return lines.join('\n') + '\n';
  }
  const header = ['content type', 'health', 'subscription', 'checkpoint', 'lag', 'last content', 'records', 'dupes', 'expired', 'late (max)', 'last sweep'];
  const table = report.contentTypes.map((r) => [
    r.contentType, r.health, r.subscription, r.checkpoint ?? '-', formatLag(r.lagSeconds), r.lastContentSeen ?? '-',
    String(r.recordsDelivered), String(r.duplicatesDropped), String(r.expiredCount), lateCell(r), r.lastSweepAt ?? '-',
  ]);
  lines.push(...alignedTable(header, table));
  if (report.apiRate) lines.push(`Request rate: ${describeRate(report.apiRate)}`);
  for (const r of report.contentTypes) {
    if (r.health !== 'Active' && r.reasons.length > 0) lines.push(`${r.contentType}: ${r.health}: ${r.reasons.join('; ')}`);
    if (r.lastError) lines.push(`${r.contentType}: last error at ${r.lastError.at}: ${r.lastError.message}`);
    if (r.services) lines.push(`${r.contentType}: ${describeServices(r.services)}`);
    if (r.history) lines.push(`${r.contentType}: ${describeHistory(r.history)}`);
    if (r.lastExpired.length > 0) {
      lines.push(`${r.contentType}: ${r.expiredCount} blob(s) expired before they could be fetched (their records are lost at the source); latest: ${r.lastExpired.map((e) => `${e.contentId} (created ${e.contentCreated})`).join(', ')}`);
    }
  }
  return lines.join('\n') + '\n';
}

/** One line: the rate the connector asks now, and whether and how the tenant was throttled. */
export function describeRate(rate: ApiRateSample): string {
  const asked = `${rate.perMinute.toLocaleString('en-US')}/min at ${rate.at}`;
  if (rate.learnedPerMinute === undefined) return `${asked} (ceiling ${rate.ceilingPerMinute.toLocaleString('en-US')}/min; never throttled)`;
  return `${asked} (${rate.throttledNow ? 'throttled now' : 'throttled earlier'}: ${rate.throttled.toLocaleString('en-US')} AF429 answer(s), each call repeated; `
    + `the service took about ${rate.learnedPerMinute.toLocaleString('en-US')}/min when it last throttled, the connector stays just under it)`;
}

/**
 * One line: the history beyond the API's 7 days: the range asked, how much of it is read, records and queries, the
 * query being read, what lies beyond the search's reach, and the last failure.
 */
export function describeHistory(history: HistoryState): string {
  const days = (intervals: readonly Interval[]) => intervals.reduce((sum, [from, to]) => sum + (to - from), 0) / 86_400_000;
  const day = (ms: number) => new Date(ms).toISOString().slice(0, 16).replace('T', ' ');
  const [first, last] = [history.asked[0], history.asked.at(-1)];
  const asked = days(history.asked);
  const read = Math.max(0, asked - days(history.todo) - days(history.unreachable));
  const parts = [
    first && last ? `history (audit search) ${day(first[0])} to ${day(last[1])}: ${round(read)} of ${round(asked)} day(s) read${history.todo.length === 0 ? ' (complete)' : ''}` : 'history (audit search): nothing asked',
    `${history.records.toLocaleString('en-US')} record(s) read, ${history.queries.toLocaleString('en-US')} quer${history.queries === 1 ? 'y' : 'ies'}`,
  ];
  if (history.paging) parts.push(`reading query ${history.paging.queryId} (${day(history.paging.from)} to ${day(history.paging.to)}, ${history.paging.records} record(s) so far)`);
  if (history.unreachable.length > 0) parts.push(`${round(days(history.unreachable))} day(s) beyond the search's reach (--history-reach)`);
  if (history.error) parts.push(`last error at ${history.error.at}: ${history.error.message}`);
  return parts.join('; ');
}

const round = (days: number) => Math.round(days * 10) / 10;

/** One line: how many services Microsoft Graph reports operational, and the others with their status. */
export function describeServices(sample: ServiceHealthSample): string {
  const troubled = sample.services.filter((entry) => entry.status.toLowerCase() !== 'serviceoperational');
  const operational = sample.services.length - troubled.length;
  return `${operational} of ${sample.services.length} service(s) operational at ${sample.at}`
    + (troubled.length > 0 ? `; ${troubled.map((entry) => `${entry.service}: ${entry.status}`).join(', ')}` : '');
}

export interface FleetUnitStatus extends ContentTypeStatus {
  /** The worker collecting the unit now; undefined when none holds it. */
  holder: string | undefined;
}

export interface FleetReport {
  overall: Health;
  /** The store, without credentials. */
  state: string;
  /** Each worker holding units now, with how many. */
  workers: Array<{ worker: string; units: number }>;
  /** `domain`: the tenant's domain, from its outputs file in the tenants directory when status was given it. */
  tenants: Array<{ tenant: string; domain?: string; overall: Health; contentTypes: FleetUnitStatus[]; apiRate?: ApiRateSample | undefined }>;
  /** `status --tenants <dir>`: the files of the directory that cannot be used (their tenants are not collected, or run on their last good file). */
  unusableTenantFiles?: Array<{ file: string; problem: string; keptTenant?: string }>;
}

/** The worker name `status` gives the one connector that holds a fleet's state directory (SQLite keeps no claims of its own). */
export const directoryWorker = 'local';

export interface FleetReportOptions {
  /** Tenant domains by tenant id (from the tenants directory's outputs files). */
  readonly domains?: ReadonlyMap<string, string>;
  /** A state directory whose lock a running connector holds: it holds every unit. */
  readonly directoryHeld?: boolean;
  readonly unusableTenantFiles?: FleetReport['unusableTenantFiles'];
  /**
   * The store tells which units live workers hold (a PostgreSQL database: its sessions' locks): a unit no worker
   * holds is not being collected, and none held at all means no worker runs. A state directory's holders live in
   * its one process, so there it says nothing.
   */
  readonly liveHolders: boolean;
  /** A unit held whose last commit is older than this is stalled (every pass commits): `--stalled-after`. */
  readonly stalledAfterSeconds: number;
}

/** Every tenant of a fleet's store, each as `status` reports one, with the worker that holds each unit. */
export async function buildFleetReport(database: StateDatabase, options: FleetReportOptions): Promise<FleetReport> {
  const now = new Date();
  const holders = await database.claims.holders();
  const holderOf = new Map(holders.map((holder) => [unitName(holder.unit), holder.worker]));
  const tenants: FleetReport['tenants'] = [];
  const workers = new Map<string, number>();
  for (const holder of holders) workers.set(holder.worker, (workers.get(holder.worker) ?? 0) + 1);
  for (const tenant of await database.tenants()) {
    if (tenant === '') continue;
    const cursors = await database.tenant(tenant).cursors();
    const report = await buildStatusReport({ stateDir: database.location, cursors, now: () => now });
    const rows = report.contentTypes.map((row): FleetUnitStatus => {
      const holder = holderOf.get(unitName({ tenant, contentType: row.contentType })) ?? (options.directoryHeld ? directoryWorker : undefined);
      const unit = { ...row, holder, reasons: [...row.reasons] };
      const savedAt = cursors.get(row.contentType)?.updatedAt;
      if (options.liveHolders && holder === undefined) unit.reasons.unshift(holders.length === 0 ? 'no worker is running' : 'no worker holds it');
      else if (holder !== undefined && savedAt !== undefined && now.getTime() - Date.parse(savedAt) > options.stalledAfterSeconds * 1000) {
        unit.reasons.unshift(`stalled: no commit for ${formatLag(Math.round((now.getTime() - Date.parse(savedAt)) / 1000))} (a sink not acknowledging, or its worker cut off from this database)`);
      }
      if (unit.health === 'Active' && unit.reasons.length > 0) unit.health = 'Degraded';
      return unit;
    });
    const domain = options.domains?.get(tenant.toLowerCase());
    tenants.push({ tenant, ...(domain ? { domain } : {}), overall: overallOf(rows), contentTypes: rows, ...(report.apiRate ? { apiRate: report.apiRate } : {}) });
    if (options.directoryHeld) workers.set(directoryWorker, (workers.get(directoryWorker) ?? 0) + rows.length);
  }
  const unusable = options.unusableTenantFiles;
  const overall: Health = tenants.length === 0 || tenants.every((t) => t.overall === 'Inactive') || (options.liveHolders && holders.length === 0)
    ? 'Inactive'
    : tenants.some((t) => t.overall !== 'Active') || (unusable?.length ?? 0) > 0 ? 'Degraded' : 'Active';
  return {
    overall, state: database.location, workers: [...workers].map(([worker, units]) => ({ worker, units })).sort((a, b) => a.worker.localeCompare(b.worker)), tenants,
    ...(unusable ? { unusableTenantFiles: unusable } : {}),
  };
}

export function formatFleetReport(report: FleetReport): string {
  const lines = [`Overall: ${report.overall}   (state ${report.state}, ${report.tenants.length} tenant(s))`];
  lines.push(report.workers.length === 0 ? 'Workers: none holds a unit now (no worker is running on this store)' : `Workers: ${report.workers.map((w) => `${w.worker} (${w.units} unit${w.units === 1 ? '' : 's'})`).join(', ')}`);
  for (const file of report.unusableTenantFiles ?? []) {
    lines.push(`Tenant file ${file.file}: unusable${file.keptTenant ? ` (tenant ${file.keptTenant} runs on its last good file)` : ' (not collected)'}: ${file.problem}`);
  }
  if (report.tenants.length === 0) {
    lines.push('No tenant has been collected yet: run `npx o365-connector run --tenants <dir> --state <this store>`.');
    return lines.join('\n') + '\n';
  }
  const header = ['tenant', 'content type', 'health', 'worker', 'checkpoint', 'lag', 'records', 'dupes', 'expired', 'late (max)', 'last sweep'];
  const table = report.tenants.flatMap((t) => t.contentTypes.map((r) => [
    t.domain ?? t.tenant, r.contentType, r.health, r.holder ?? '-', r.checkpoint ?? '-', formatLag(r.lagSeconds), String(r.recordsDelivered),
    String(r.duplicatesDropped), String(r.expiredCount), lateCell(r), r.lastSweepAt ?? '-',
  ]));
  lines.push(...alignedTable(header, table));
  for (const t of report.tenants) lines.push(...tenantRemarks(t));
  if (report.tenants.some((t) => t.domain === undefined)) lines.push('Tenants are shown by id: give `--tenants <dir>` (or O365_TENANTS_DIR) to show their domains.');
  return lines.join('\n') + '\n';
}

/**
 * A tenant's remarks, each said once: one that holds for several of its content types (a consent revoked, auditing
 * off) names them together, or says "every content type", instead of repeating itself per unit.
 */
function tenantRemarks(tenant: FleetReport['tenants'][number]): string[] {
  const who = tenant.domain ? `${tenant.domain} (${tenant.tenant})` : tenant.tenant;
  const byText = new Map<string, { types: string[]; latest: string | undefined }>();
  const add = (text: string, contentType: string, at?: string) => {
    const entry = byText.get(text) ?? { types: [], latest: undefined };
    entry.types.push(contentType);
    if (at !== undefined && (entry.latest === undefined || at > entry.latest)) entry.latest = at;
    byText.set(text, entry);
  };
  for (const row of tenant.contentTypes) {
    if (row.health !== 'Active' && row.reasons.length > 0) add(`${row.health}: ${row.reasons.join('; ')}`, row.contentType);
    if (row.lastError) add(`last error: ${row.lastError.message}`, row.contentType, row.lastError.at);
    if (row.history && (row.history.todo.length > 0 || row.history.error)) add(describeHistory(row.history), row.contentType);
  }
  const remarks = [...byText].map(([text, { types, latest }]) => {
    const which = types.length === tenant.contentTypes.length && types.length > 1 ? 'every content type' : types.join(', ');
    return `${who} ${which}: ${text}${latest ? ` (latest at ${latest})` : ''}`;
  });
  // A tenant that was ever throttled: the rate it runs at is the first thing to know about a slow tenant.
  return tenant.apiRate?.learnedPerMinute !== undefined ? [`${who} request rate: ${describeRate(tenant.apiRate)}`, ...remarks] : remarks;
}

/** Late blobs with the largest lateness, as a table cell. */
function lateCell(row: ContentTypeStatus): string {
  return row.lateBlobs > 0 ? `${row.lateBlobs} (${formatLag(row.maxLatenessSeconds)})` : '0';
}

/** The header and rows with each column padded to its widest cell, two spaces apart. */
function alignedTable(header: readonly string[], rows: readonly string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  return [header, ...rows].map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
}
