import type { Subscription } from '../api/activity-api.ts';
import { stateDirOf } from '../config/config.ts';
import { buildStatusReport, formatStatusReport } from '../status/status-report.ts';
import { describeFailure, exitCodes } from './exit-codes.ts';
import { createRuntime, loggerFor, type GlobalFlags } from './runtime.ts';
import { quickRetryPolicy } from './test-connection.ts';

/** How long `status` waits for the live subscription list before reporting from state alone. */
const liveListTimeoutMs = 15_000;

export interface StatusFlags extends GlobalFlags {
  readonly json?: boolean | undefined;
  readonly offline?: boolean | undefined;
}

/**
 * `status`: the report from the state store, plus the live subscription list when the configuration and
 * the network allow (never required). Exit code: 0 Active, 10 Degraded, 11 Inactive.
 */
export async function showStatus(flags: StatusFlags, out: NodeJS.WritableStream = process.stdout): Promise<number> {
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
  if (report.overall === 'Active') return exitCodes.ok;
  return report.overall === 'Degraded' ? exitCodes.degraded : exitCodes.inactive;
}
