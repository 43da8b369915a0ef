/**
 * `run`: start the needed subscriptions, then collect until stopped (or, with --once, until everything available now
 * is delivered). The process's work is here: signals, the metrics, /readyz and the terminal's progress lines wired
 * to the worker, and the end of the run as an exit code. The first SIGINT/SIGTERM aborts gracefully (in-flight
 * batches acknowledged, state saved, exit 0); a second one exits at once with 130.
 */
import type { CollectedType } from '../../contract/content-types.ts';
import type { RunConfiguration } from '../config/run-config.ts';
import { keepBelowLogs, loggerFor } from '../observe/log.ts';
import { redactSecrets } from '../observe/secret-values.ts';
import { Telemetry } from '../observe/telemetry.ts';
import { startHealthServer, type HealthServer, type Readiness } from '../report/health-server.ts';
import { ConnectorMetrics, type MetricsTenant } from '../report/metrics.ts';
import { ProgressDisplay } from '../report/progress.ts';
import { StatusPageSource } from '../report/status-page/page-source.ts';
import { StallWatch, throttledNow, watchedObserver } from '../report/stall-watch.ts';
import { Worker } from '../run/worker.ts';
import type { StateDatabase } from '../state/store.ts';
import { describeFailure, exitCodes } from './exit-codes.ts';
import { endOfRun } from './run-finished.ts';
import { stopOnSignals } from './stop-signals.ts';

export async function runCommand(config: RunConfiguration): Promise<number> {
  const logger = loggerFor(config);
  const worker = await Worker.prepare(config, { logger, telemetry: new Telemetry() });
  const { controller, dispose } = stopOnSignals(logger);
  const fixed = worker.tenants.fixed;
  // One tenant's figures are all of its content types; a fleet worker reports the units it holds (summed over the fleet, every unit counts once).
  const held = new Map<string, Set<CollectedType>>();
  let unitsHeld = 0;
  let database: StateDatabase | undefined;
  const reported = (): Array<[string, ReadonlySet<CollectedType> | undefined]> => (config.fleet ? [...held] : worker.runtimes.all().map((runtime) => [runtime.tenant, undefined]));
  const watch = new StallWatch({ stalledAfterMs: config.settings.stalledAfterSeconds * 1000, throttled: () => throttledNow(reported().map(([tenant]) => worker.runtimes.get(tenant)?.clients.api.rate)) });
  // One tenant's state directory is the process's own: only sinks and commits can stall its collection.
  if (!config.fleet) watch.databaseBack();
  let health: HealthServer | undefined;
  let page: StatusPageSource | undefined;
  let progress: ProgressDisplay | undefined;
  try {
    const metrics = config.listen ? new ConnectorMetrics({
      telemetry: worker.telemetry, sinkNames: worker.sinks.map((sink) => sink.name), stalled: () => watch.reasons(),
      worker: { name: config.workerName, unitsHeld: () => unitsHeld },
      ...(config.fleet ? { unusableTenantFiles: () => worker.tenants.unusable().length } : { defaultTenant: fixed?.config.tenantId }),
      tenants: (): MetricsTenant[] => (database === undefined ? [] : reported().map(([tenant, contentTypes]) => ({
        tenant, store: database!.tenant(tenant), secretExpiresAt: worker.runtimes.get(tenant)?.entry.config.secretExpiresAt, apiRate: worker.runtimes.get(tenant)?.clients.api.rate,
        ...(contentTypes ? { contentTypes } : {}),
      }))),
    }) : undefined;
    if (metrics && config.listen) {
      worker.observeAnswers((tenant, operation, code) => metrics.apiAnswered(operation, code, config.fleet ? tenant : undefined));
      page = new StatusPageSource({
        database: () => database, stalledAfterSeconds: config.settings.stalledAfterSeconds,
        tenants: () => worker.runtimes.all().map((runtime) => ({ tenant: runtime.tenant, domain: runtime.entry.config.tenantDomain, secretExpiresAt: runtime.entry.config.secretExpiresAt })),
      });
      page.start();
      health = await startHealthServer(config.listen, { metrics, logger, page, token: config.listenToken, readiness: () => readiness(worker, controller.signal, watch) });
    }
    const summary = await worker.run({
      signal: controller.signal,
      observer: watchedObserver(watch, metrics),
      onStateLost: (reason) => watch.databaseLost(reason),
      onStateBack: () => watch.databaseBack(),
      onStateOpen: (open) => {
        database = open;
        if (open && config.progress && fixed) {
          // On a terminal: one live line per content type under the logs (never when stderr is a file or a pipe).
          const api = worker.runtimes.get(fixed.config.tenantId)!.clients.api;
          progress = new ProgressDisplay(process.stderr, fixed.config.contentTypes, { lagMs: config.settings.safetyLagMinutes * 60_000, rate: () => api.rate });
          keepBelowLogs(progress);
          progress.start();
        }
        if (!open) stopProgress();
      },
      ...(config.progress ? { onProgress: (contentType, update) => progress?.update(contentType, update) } : {}),
      onTick: (running) => {
        watch.unitsHeld(running.length);
        unitsHeld = running.length;
        held.clear();
        for (const unit of running) held.set(unit.tenant, (held.get(unit.tenant) ?? new Set()).add(unit.contentType));
      },
    });
    return endOfRun(logger, summary, { once: config.once, stopped: controller.signal.aborted, every: config.fleet });
  } catch (error) {
    // A stop requested by signal is a normal end, whatever the interrupted call threw.
    if (controller.signal.aborted) return exitCodes.ok;
    throw error;
  } finally {
    stopProgress();
    held.clear();
    dispose();
    page?.stop();
    await health?.close();
    await worker.close();
  }

  function stopProgress(): void {
    if (!progress) return;
    keepBelowLogs(undefined);
    progress.stop();
    progress = undefined;
  }
}

/** Ready: not stopping, collection not stalled, and (one tenant) a token can be had: a refused or expired secret makes the connector unready. */
async function readiness(worker: Worker, stopping: AbortSignal, watch: StallWatch): Promise<Readiness> {
  if (stopping.aborted) return { ready: false, reasons: ['stopping'] };
  try {
    if (!worker.config.fleet) await worker.runtimes.all()[0]?.clients.tokens.getToken({ abortSignal: AbortSignal.timeout(10_000) });
    const stalled = watch.reasons();
    return { ready: stalled.length === 0, reasons: stalled };
  } catch (error) {
    return { ready: false, reasons: [`no token: ${redactSecrets(describeFailure(error).line)}`] };
  }
}
