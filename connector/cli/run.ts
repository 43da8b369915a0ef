import { retentionMs } from '../sources/activity-api/activity-api.ts';
import { isContentType } from '../../contract/content-types.ts';
import { earliestListable } from '../sources/activity-api/windows.ts';
import { parseSince } from '../config/config.ts';
import type { RunSettings } from '../config/settings.ts';
import { runConnector, type RunSummary } from '../pipeline/run-connector.ts';
import { openStateStore } from '../state/sqlite/store.ts';
import { createSink, sinkSpecs } from '../sinks/spec.ts';
import type { Sink } from '../sinks/sink.ts';
import { describeFailure, exitCodes } from './exit-codes.ts';
import { createRuntime, type GlobalFlags, type Runtime } from './runtime.ts';
import { StallWatch, throttledNow, watchedObserver } from '../report/stall-watch.ts';
import { startHealthServer, type HealthServer, type Readiness } from '../report/health-server.ts';
import { keepBelowLogs } from '../observe/log.ts';
import { ConnectorMetrics } from '../report/metrics.ts';
import { ProgressDisplay } from '../report/progress.ts';
import type { StateStore } from '../state/store.ts';
import { redactSecrets } from '../observe/secret-values.ts';
import { isPostgresUrl, refusePasswordInStateUrl } from '../state/open-database.ts';
import { stateLocationOf } from '../config/config.ts';
import { runFleetCommand } from './run-fleet.ts';
import { stopOnSignals } from './stop-signals.ts';
import { endOfRun } from './run-finished.ts';

export interface RunFlags extends GlobalFlags {
  readonly once?: boolean | undefined;
  readonly since: string;
  readonly sink: string[];
  readonly contentTypes?: string | undefined;
  /** Write connector health records into the sinks (--emit-health). */
  readonly emitHealth?: boolean | undefined;
  /** `host:port` to serve /metrics, /livez and /readyz on (off when absent). */
  readonly listen?: string | undefined;
  /** A fleet worker: every `*.json` of this directory is one tenant's outputs file. */
  readonly tenants?: string | undefined;
  /** This worker's name in a fleet (status shows who holds what; sink positions are kept per worker). */
  readonly workerName?: string | undefined;
  /** Every tunable of the run, validated, with the table's defaults (connector/config/settings.ts). */
  readonly settings: RunSettings;
}

/**
 * `run`: start the needed subscriptions, then collect until stopped (or, with --once, until everything
 * available now is delivered). The first SIGINT/SIGTERM aborts gracefully (in-flight batches acknowledged,
 * state saved, exit 0); a second one exits at once with 130.
 */
/** Ready: not stopping, a token can be had (a refused or expired secret makes the connector unready), and collection is not stalled. */
async function readiness(runtime: Runtime, stopping: AbortSignal, watch: StallWatch): Promise<Readiness> {
  if (stopping.aborted) return { ready: false, reasons: ['stopping'] };
  try {
    await runtime.tokens.getToken({ abortSignal: AbortSignal.timeout(10_000) });
    const stalled = watch.reasons();
    return { ready: stalled.length === 0, reasons: stalled };
  } catch (error) {
    return { ready: false, reasons: [`no token: ${redactSecrets(describeFailure(error).line)}`] };
  }
}

export async function runCommand(flags: RunFlags): Promise<number> {
  // Many tenants (--tenants), or state in a database the fleet shares: a fleet worker.
  const state = stateLocationOf(flags);
  if (isPostgresUrl(state)) refusePasswordInStateUrl(state);
  if (flags.tenants !== undefined || isPostgresUrl(state)) return runFleetCommand(flags);
  const since = parseSince(flags.since, new Date());
  const runtime = await createRuntime(flags, { maxBlobBytes: flags.settings.maxBlobBytes, requestDeadlineMs: flags.settings.requestDeadlineSeconds * 1000 });
  // More than 7 days back (a minute's slack for the default, 7d): the windows start at the API's limit instead.
  if (since.getTime() < Date.now() - retentionMs - 60_000) {
    runtime.logger.warn({ since: flags.since, startsAt: new Date(earliestListable(Date.now())).toISOString() }, '--since is further back than the 7 days the API keeps content: a first run starts at the oldest content it can list');
  }
  const { controller, dispose } = stopOnSignals(runtime.logger);
  let health: HealthServer | undefined;
  // The state directory is the process's own: only sinks and commits can stall collection.
  const watch = new StallWatch({ stalledAfterMs: flags.settings.stalledAfterSeconds * 1000, throttled: () => throttledNow([runtime.api.rate]) });
  watch.databaseBack();
  try {
    const sinkContext = { env: process.env, telemetry: runtime.telemetry, logger: runtime.logger, lockWaitMs: flags.settings.stateLockWaitSeconds * 1000, proxy: runtime.proxy };
    const sinks: Sink[] = sinkSpecs(flags.sink, process.env).map((spec) => createSink(spec, sinkContext));
    // Served from the start (the state's figures appear once the store is open), so that startup is observable too.
    let store: StateStore | undefined;
    let metrics: ConnectorMetrics | undefined;
    if (flags.listen) {
      metrics = new ConnectorMetrics({
        stateDir: runtime.config.stateDir, defaultTenant: runtime.config.tenantId, telemetry: runtime.telemetry, sinkNames: sinks.map((sink) => sink.name),
        tenants: () => (store ? [{ tenant: runtime.config.tenantId, store, secretExpiresAt: runtime.config.secretExpiresAt, apiRate: runtime.api.rate }] : []),
        stalled: () => watch.reasons(),
      });
      const counting = metrics;
      runtime.api.observeAnswers((operation, code) => counting.apiAnswered(operation, code));
      health = await startHealthServer(flags.listen, { metrics, logger: runtime.logger, readiness: () => readiness(runtime, controller.signal, watch) });
    }
    const opened = await openStateStore(runtime.config.stateDir, {
      tenant: runtime.config.tenantId,
      lockWaitMs: flags.settings.stateLockWaitSeconds * 1000, abortSignal: controller.signal,
      onLockWait: () => runtime.logger.warn({ stateDir: runtime.config.stateDir, waitSeconds: flags.settings.stateLockWaitSeconds }, 'the state directory is locked by another connector (a predecessor still exiting?): waiting for it'),
    });
    store = opened;
    watch.unitsHeld(runtime.config.contentTypes.length);
    let summary: RunSummary;
    let progress: ProgressDisplay | undefined;
    try {
      // On a terminal: one live line per content type under the logs (never when stderr is a file or a pipe).
      if (process.stderr.isTTY) {
        progress = new ProgressDisplay(process.stderr, runtime.config.contentTypes, { lagMs: flags.settings.safetyLagMinutes * 60_000, rate: () => runtime.api.rate });
        keepBelowLogs(progress);
        progress.start();
      }
      summary = await runConnector({
        api: runtime.api, graph: runtime.graph, contentTypes: runtime.config.contentTypes, since, once: Boolean(flags.once), store: opened,
        sinks, telemetry: runtime.telemetry, logger: runtime.logger, abortSignal: controller.signal, settings: flags.settings,
        ...(progress ? { onProgress: progress.update.bind(progress) } : {}),
        ...(flags.emitHealth ? { emitHealth: true } : {}),
        observer: watchedObserver(watch, metrics),
        // Each unit starts its own subscription: one the app may not read (DLP.All without ActivityFeed.ReadDlp) is
        // that unit's error, in status and the exit code of --once, and the others collect.
        prepare: async (contentType, signal) => {
          if (isContentType(contentType)) await runtime.api.startSubscription(contentType, { abortSignal: signal });
        },
      });
    } finally {
      keepBelowLogs(undefined);
      progress?.stop();
      store = undefined;
      await opened.close();
    }
    return endOfRun(runtime.logger, summary, { once: Boolean(flags.once), stopped: controller.signal.aborted, every: false });
  } catch (error) {
    // A stop requested by signal is a normal end, whatever the interrupted call threw.
    if (controller.signal.aborted) return exitCodes.ok;
    throw error;
  } finally {
    dispose();
    await health?.close();
    await runtime.close();
  }
}
