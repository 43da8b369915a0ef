import type { RunSummary } from '../pipeline/run-connector.ts';
import type { Logger } from '../status/log.ts';

/** The last line of every run: what it delivered, and what it cost (operators size machines by it; the bench reads it). */
export function logRunFinished(logger: Logger, summary: RunSummary): void {
  const usage = process.resourceUsage();
  logger.info({
    summary: { records: summary.records, blobs: summary.blobs, duplicates: summary.duplicates, expired: summary.expired, setAside: summary.setAside, errors: summary.errors.length },
    // maxRSS is in KiB; CPU in microseconds.
    resources: { peakRssBytes: usage.maxRSS * 1024, cpuUserMicros: usage.userCPUTime, cpuSystemMicros: usage.systemCPUTime },
  }, 'run finished');
}
