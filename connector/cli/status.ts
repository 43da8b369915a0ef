import type { Subscription } from '../sources/activity-api/activity-api.ts';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { stateDirOf, stateLocationOf } from '../config/config.ts';
import { settingSpecs } from '../config/settings.ts';
import { lockFileName } from '../state/sqlite/directory-lock.ts';
import { isLockHeld } from '../core/lock-file.ts';
import { isPostgresUrl, openStateDatabaseReadOnlyAt, refusePasswordInStateUrl } from '../state/open-database.ts';
import { stateDbName } from '../state/sqlite/schema.ts';
import { checkStateToReport } from '../state/sqlite/state-directory.ts';
import { buildFleetReport, buildStatusReport, formatFleetReport, formatStatusReport, type FleetReport, type Health } from '../report/status-report.ts';
import { describeFailure, exitCodes } from './exit-codes.ts';
import { refuseSingleTenantSources, TenantDirectory } from '../run/tenant-directory.ts';
import { redactSecrets } from '../observe/secret-values.ts';
import { createRuntime, loggerFor, type GlobalFlags } from './runtime.ts';
import { quickRetryPolicy } from './test-connection.ts';

/** How long `status` waits for the live subscription list before reporting from state alone. */
const liveListTimeoutMs = 15_000;

export interface StatusFlags extends GlobalFlags {
  readonly json?: boolean | undefined;
  readonly offline?: boolean | undefined;
  /** `--stalled-after`: a unit held whose last commit is older is reported stalled. */
  readonly stalledAfter?: number | undefined;
  /** A fleet's tenants directory: its outputs files name each tenant's domain, and its files that cannot be used are reported. */
  readonly tenants?: string | undefined;
}

/**
 * `status`: the report from the state store, plus the live subscription list when the configuration and
 * the network allow (never required). Exit code: 0 Active, 10 Degraded, 11 Inactive.
 */
export async function showStatus(flags: StatusFlags, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const location = stateLocationOf(flags);
  if (isPostgresUrl(location)) refusePasswordInStateUrl(location);
  else checkStateToReport(location, Boolean(flags.state ?? process.env['O365_STATE_DIR']));
  const tenantFiles = flags.tenants === undefined ? undefined : await readTenantFiles(flags.tenants, flags.contentTypes);
  const fleet = await fleetReportOf(location, tenantFiles, flags.stalledAfter ?? settingSpecs.stalledAfterSeconds.default);
  if (fleet) {
    out.write(flags.json ? `${JSON.stringify(fleet, null, 2)}\n` : formatFleetReport(fleet));
    return exitCodeOf(fleet.overall);
  }
  const logger = loggerFor(flags);
  let stateDir = stateDirOf(flags);
  let subscriptions: Subscription[] | undefined;
  if (!flags.offline) {
    try {
      const runtime = await createRuntime(flags, { retry: quickRetryPolicy, logger });
      stateDir = runtime.config.stateDir;
      try {
        subscriptions = await runtime.api.listSubscriptions({ abortSignal: AbortSignal.timeout(liveListTimeoutMs) });
      } finally {
        await runtime.close();
      }
    } catch (error) {
      logger.warn({ reason: describeFailure(error).line }, 'live subscription list unavailable; reporting from the state directory only');
    }
  }
  // The report opens the state read-only: no lock, nothing created, so it answers while a connector runs.
  const report = await buildStatusReport({ stateDir, ...(subscriptions ? { subscriptions } : {}) });
  out.write(flags.json ? `${JSON.stringify(report, null, 2)}\n` : formatStatusReport(report));
  return exitCodeOf(report.overall);
}

function exitCodeOf(health: Health): number {
  if (health === 'Active') return exitCodes.ok;
  return health === 'Degraded' ? exitCodes.degraded : exitCodes.inactive;
}

/**
 * The fleet's view, when the store is a fleet's: a PostgreSQL database, or a state directory holding more than one
 * tenant (`run --tenants`). Undefined for one tenant's state directory, reported as before.
 */
async function fleetReportOf(state: string, tenantFiles: TenantFiles | undefined, stalledAfterSeconds: number): Promise<FleetReport | undefined> {
  const unusable = tenantFiles?.unusable;
  if (!isPostgresUrl(state) && !existsSync(join(resolve(state), stateDbName))) {
    return unusable === undefined ? undefined : fleetReportOfNoState(state, unusable);
  }
  const database = await openStateDatabaseReadOnlyAt(state);
  try {
    if (unusable === undefined && !isPostgresUrl(state) && (await database.tenants()).filter((tenant) => tenant !== '').length <= 1) return undefined;
    return await buildFleetReport(database, {
      ...(tenantFiles ? { domains: tenantFiles.domains, unusableTenantFiles: tenantFiles.unusable } : {}),
      liveHolders: isPostgresUrl(state), stalledAfterSeconds,
      // A state directory has no claims to read: its lock says whether a worker runs on it.
      ...(isPostgresUrl(state) ? {} : { directoryHeld: isLockHeld(join(resolve(state), lockFileName)) }),
    });
  } finally {
    await database.close();
  }
}

interface TenantFiles {
  /** Tenant id (lower case) → domain, from the usable files. */
  readonly domains: ReadonlyMap<string, string>;
  readonly unusable: NonNullable<FleetReport['unusableTenantFiles']>;
}

/** `--tenants`: the directory read as a worker reads it (nothing is asked of Microsoft): each tenant's domain, and every file a worker cannot use. */
async function readTenantFiles(dir: string, contentTypes: string | undefined): Promise<TenantFiles> {
  refuseSingleTenantSources({});
  const directory = new TenantDirectory(dir, { contentTypes });
  await directory.scan();
  const domains = new Map<string, string>();
  for (const { config } of directory.tenants.values()) if (config.tenantDomain) domains.set(config.tenantId.toLowerCase(), config.tenantDomain);
  const unusable = directory.unusable.map((problem) => ({ file: problem.file, problem: redactSecrets(problem.error.toLine()), ...(problem.keptTenant ? { keptTenant: problem.keptTenant } : {}) }));
  return { domains, unusable };
}

function fleetReportOfNoState(state: string, unusable: FleetReport['unusableTenantFiles']): FleetReport {
  return { overall: 'Inactive', state: resolve(state), workers: [], tenants: [], unusableTenantFiles: unusable };
}
