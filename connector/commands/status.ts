import type { Subscription } from '../api/activity-api.ts';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { decodeOutputsText, stateDirOf, stateLocationOf } from '../config/config.ts';
import { ConfigError } from '../errors.ts';
import { lockFileName } from '../state/directory-lock.ts';
import { isLockHeld } from '../state/lock-file.ts';
import { isPostgresUrl, openStateDatabaseReadOnlyAt, refusePasswordInStateUrl } from '../state/open-database.ts';
import { stateDbName } from '../state/sqlite-schema.ts';
import { checkStateToReport } from '../state/state-directory.ts';
import { buildFleetReport, buildStatusReport, formatFleetReport, formatStatusReport, type FleetReport, type Health } from '../status/status-report.ts';
import { describeFailure, exitCodes } from './exit-codes.ts';
import { createRuntime, loggerFor, type GlobalFlags } from './runtime.ts';
import { quickRetryPolicy } from './test-connection.ts';

/** How long `status` waits for the live subscription list before reporting from state alone. */
const liveListTimeoutMs = 15_000;

export interface StatusFlags extends GlobalFlags {
  readonly json?: boolean | undefined;
  readonly offline?: boolean | undefined;
  /** A fleet's tenants directory: its outputs files name each tenant's domain. */
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
  const fleet = await fleetReportOf(location, flags.tenants);
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
async function fleetReportOf(state: string, tenantsDir: string | undefined): Promise<FleetReport | undefined> {
  if (!isPostgresUrl(state) && !existsSync(join(resolve(state), stateDbName))) return undefined;
  const database = await openStateDatabaseReadOnlyAt(state);
  try {
    if (!isPostgresUrl(state) && (await database.tenants()).filter((tenant) => tenant !== '').length <= 1) return undefined;
    return await buildFleetReport(database, {
      ...(tenantsDir ? { domains: await tenantDomains(tenantsDir) } : {}),
      // A state directory has no claims to read: its lock says whether a worker runs on it.
      ...(isPostgresUrl(state) ? {} : { directoryHeld: isLockHeld(join(resolve(state), lockFileName)) }),
    });
  } finally {
    await database.close();
  }
}

/** Tenant id → domain, from the `tenantId` and `tenantDomain` of each outputs file in the directory (nothing else is read). */
async function tenantDomains(dir: string): Promise<Map<string, string>> {
  const domains = new Map<string, string>();
  let names: string[];
  try {
    names = (await readdir(dir)).filter((name) => name.endsWith('.json'));
  } catch (error) {
    throw new ConfigError('--tenants', `cannot read the directory ${dir} (${(error as NodeJS.ErrnoException).code ?? 'error'})`, 'give the tenants directory the fleet runs with');
  }
  for (const name of names) {
    try {
      const outputs = JSON.parse(decodeOutputsText(await readFile(join(dir, name)))) as { tenantId?: unknown; tenantDomain?: unknown };
      if (typeof outputs.tenantId === 'string' && typeof outputs.tenantDomain === 'string') domains.set(outputs.tenantId.toLowerCase(), outputs.tenantDomain);
    } catch {
      // A file run refuses too: the tenant is shown by id.
    }
  }
  return domains;
}
