import type { RunSummary } from '../core/counts.ts';
import type { Logger } from '../observe/log.ts';
import { exitCodes } from './exit-codes.ts';

/**
 * The end of a run: its last log line (what it delivered and what it cost; operators size machines by it, the bench
 * reads it) and its exit code. A --once run that met errors exits 4 with one line per error (`every`: a fleet's
 * units each fail on their own) or with the first (one tenant's run).
 */
export function endOfRun(logger: Logger, summary: RunSummary, options: { once: boolean; stopped: boolean; every: boolean }): number {
  const usage = process.resourceUsage();
  logger.info({
    summary: { records: summary.records, blobs: summary.blobs, duplicates: summary.duplicates, expired: summary.expired, setAside: summary.setAside, errors: summary.errors.length },
    // maxRSS is in KiB; CPU in microseconds.
    resources: { peakRssBytes: usage.maxRSS * 1024, cpuUserMicros: usage.userCPUTime, cpuSystemMicros: usage.systemCPUTime },
  }, 'run finished');
  if (!options.once || options.stopped || summary.errors.length === 0) return exitCodes.ok;
  for (const error of options.every ? summary.errors : summary.errors.slice(0, 1)) {
    process.stderr.write(`error: ${error.tenant === undefined ? '' : `${error.tenant} `}${error.contentType}: ${error.message}\n`);
  }
  return exitCodes.api;
}
