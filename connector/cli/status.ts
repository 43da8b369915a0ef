import type { RunConfiguration } from '../config/run-config.ts';
import { loggerFor } from '../observe/log.ts';
import { formatFleetReport, formatStatusReport, type Health } from '../report/status-report.ts';
import { statusOf } from '../report/status.ts';
import { describeFailure, exitCodes } from './exit-codes.ts';

/**
 * `status`: the report from the state store, plus the live subscription list when the configuration and
 * the network allow (never required). Exit code: 0 Active, 10 Degraded, 11 Inactive.
 */
export async function showStatus(config: RunConfiguration, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const logger = loggerFor(config);
  const status = await statusOf(config, logger, (error) => {
    logger.warn({ reason: describeFailure(error).line }, 'live subscription list unavailable; reporting from the state directory only');
  });
  const report = 'fleet' in status ? status.fleet : status.tenant;
  out.write(config.json ? `${JSON.stringify(report, null, 2)}\n` : 'fleet' in status ? formatFleetReport(status.fleet) : formatStatusReport(status.tenant));
  return exitCodeOf(report.overall);
}

function exitCodeOf(health: Health): number {
  if (health === 'Active') return exitCodes.ok;
  return health === 'Degraded' ? exitCodes.degraded : exitCodes.inactive;
}
