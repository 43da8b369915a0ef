/**
 * What `status` reports: the fleet's view when the store is a fleet's (or a tenants directory is given), else one
 * tenant's report from its state directory, with the live subscription list when the configuration and the network
 * allow (never required).
 */
import type { Subscription } from '../sources/activity-api/activity-api.ts';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { RunConfiguration, TenantSourceSpec } from '../config/run-config.ts';
import { isPostgresUrl } from '../config/state-location.ts';
import { lockFileName } from '../state/sqlite/directory-lock.ts';
import { isLockHeld } from '../core/lock-file.ts';
import { openStateDatabaseReadOnlyAt } from '../state/open-database.ts';
import { stateDbName } from '../state/sqlite/schema.ts';
import { checkStateToReport } from '../state/sqlite/state-directory.ts';
import { buildFleetReport, buildStatusReport, type FleetReport, type FleetReportOptions, type StatusReport } from './status-report.ts';
import { tenantSourceOf } from '../run/tenants.ts';
import { TenantRuntimes } from '../run/tenant-runtimes.ts';
import { quickRetryPolicy } from '../run/tenant-check.ts';
import type { Logger } from '../observe/log.ts';
import { redactSecrets } from '../observe/secret-values.ts';
import { Telemetry } from '../observe/telemetry.ts';

/** How long `status` waits for the live subscription list before reporting from state alone. */
const liveListTimeoutMs = 15_000;

export type Status = { readonly fleet: FleetReport } | { readonly tenant: StatusReport };

/** `onLiveListFailed`: the live subscription list could not be had (the report is made from the state alone). */
export async function statusOf(config: RunConfiguration, logger: Logger, onLiveListFailed: (error: unknown) => void): Promise<Status> {
  const location = config.state;
  if (!isPostgresUrl(location)) checkStateToReport(location, config.stateGiven);
  const tenantFiles = config.tenants.kind === 'directory' ? await readTenantFiles(config.tenants) : undefined;
  const fleet = await fleetReportOf(location, tenantFiles, config.settings.stalledAfterSeconds);
  if (fleet) return { fleet };
  let subscriptions: Subscription[] | undefined;
  if (!config.offline && config.tenants.kind === 'fixed') {
    try {
      if (config.proxyFailure) throw config.proxyFailure;
      const tenants = await tenantSourceOf(config.tenants);
      const runtimes = new TenantRuntimes({ proxy: config.proxy, logger, telemetry: new Telemetry(), settings: config.settings, retry: quickRetryPolicy, oneTenant: true });
      try {
        await runtimes.apply(await tenants.scan());
        subscriptions = await runtimes.all()[0]!.clients.api.listSubscriptions({ abortSignal: AbortSignal.timeout(liveListTimeoutMs) });
      } finally {
        await runtimes.close();
      }
    } catch (error) {
      onLiveListFailed(error);
    }
  }
  // The report opens the state read-only: no lock, nothing created, so it answers while a connector runs.
  return { tenant: await buildStatusReport({ stateDir: resolve(location), ...(subscriptions ? { subscriptions } : {}) }) };
}

/**
 * The fleet's view, when the store is a fleet's: a PostgreSQL database, or a state directory holding more than one
 * tenant (`run --tenants`). Undefined for one tenant's state directory, reported as before.
 */
async function fleetReportOf(state: string, tenantFiles: TenantFiles | undefined, stalledAfterSeconds: number): Promise<FleetReport | undefined> {
  const unusable = tenantFiles?.unusableTenantFiles;
  const shared = isPostgresUrl(state);
  if (!shared && !existsSync(join(resolve(state), stateDbName))) {
    return unusable === undefined ? undefined : { overall: 'Inactive', state: resolve(state), workers: [], tenants: [], unusableTenantFiles: unusable };
  }
  const database = await openStateDatabaseReadOnlyAt(state);
  try {
    if (unusable === undefined && !shared && (await database.tenants()).filter((tenant) => tenant !== '').length <= 1) return undefined;
    return await buildFleetReport(database, {
      ...tenantFiles, liveHolders: shared, stalledAfterSeconds,
      // A state directory has no claims to read: its lock says whether a worker runs on it.
      directoryHeld: !shared && isLockHeld(join(resolve(state), lockFileName)),
    });
  } finally {
    await database.close();
  }
}

/** Tenant id (lower case) → domain, from the usable files; and the files a worker cannot use. */
type TenantFiles = Required<Pick<FleetReportOptions, 'domains' | 'unusableTenantFiles'>>;

/** `--tenants`: the directory read as a worker reads it (nothing is asked of Microsoft): each tenant's domain, and every file a worker cannot use. */
async function readTenantFiles(spec: TenantSourceSpec): Promise<TenantFiles> {
  const directory = await tenantSourceOf(spec);
  const domains = new Map<string, string>();
  for (const { config } of (await directory.scan()).added) if (config.tenantDomain) domains.set(config.tenantId.toLowerCase(), config.tenantDomain);
  const unusableTenantFiles = directory.unusable().map((problem) => ({ file: problem.file, problem: redactSecrets(problem.error.toLine()), ...(problem.keptTenant ? { keptTenant: problem.keptTenant } : {}) }));
  return { domains, unusableTenantFiles };
}
