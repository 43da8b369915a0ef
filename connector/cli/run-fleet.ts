/**
 * `run --tenants <dir>` (or `run --state postgres://…`): a fleet worker. It collects every tenant of the
 * directory whose units it can claim, and shares them with the other workers of the same state database.
 */
import { hostname } from 'node:os';
import { HttpAgentsByCaFile } from '../http/http-agent.ts';
import { proxySettings } from '../http/proxy.ts';
import { loadConfig, parseSince, stateLocationOf } from '../config/config.ts';
import { ConnectorError } from '../core/errors.ts';
import { refuseSingleTenantSources, TenantDirectory, type TenantChanges } from '../run/tenant-directory.ts';
import { ReconnectBackoff } from '../run/reconnect-backoff.ts';
import { runFleet, type TenantSource } from '../run/run-fleet.ts';
import { createSink, sinkSpecs } from '../sinks/spec.ts';
import { openStateDatabaseAt } from '../state/open-database.ts';
import { Telemetry } from '../observe/telemetry.ts';
import { StallWatch, throttledNow, watchedObserver } from '../report/stall-watch.ts';
import { startHealthServer, type HealthServer } from '../report/health-server.ts';
import { ConnectorMetrics, type MetricsTenant } from '../report/metrics.ts';
import type { StateDatabase } from '../state/store.ts';
import { TenantRuntimes } from '../run/tenant-runtimes.ts';
import type { CollectedType } from '../../contract/content-types.ts';
import { exitCodes } from './exit-codes.ts';
import type { RunFlags } from './run.ts';
import { stopOnSignals } from './stop-signals.ts';
import { endOfRun } from './run-finished.ts';
import { loggerFor } from './runtime.ts';
import type { Logger } from '../observe/log.ts';
import { redactSecrets } from '../observe/secret-values.ts';

export async function runFleetCommand(flags: RunFlags): Promise<number> {
  const logger = loggerFor(flags);
  const tenants = tenantSource(flags);
  const since = parseSince(flags.since, new Date());
  const state = stateLocationOf(flags);
  const workerName = flags.workerName?.trim() || hostname();
  const { controller, dispose } = stopOnSignals(logger);
  const proxy = proxySettings(process.env, flags.proxy);
  const agents = new HttpAgentsByCaFile({ proxy, ...(flags.maxInFlight ? { connections: Math.max(flags.maxInFlight, 2) } : {}) });
  const telemetry = new Telemetry();
  let health: HealthServer | undefined;
  try {
    const sinkContext = { env: process.env, telemetry, logger, lockWaitMs: flags.settings.stateLockWaitSeconds * 1000, proxy };
    const sinks = sinkSpecs(flags.sink, process.env).map((spec) => createSink(spec, sinkContext));
    // Each worker reports the units it holds: summed over the fleet, every unit counts once.
    let database: StateDatabase | undefined;
    const held = new Map<string, Set<CollectedType>>();
    const watch = new StallWatch({ stalledAfterMs: flags.settings.stalledAfterSeconds * 1000, throttled: () => throttledNow([...held.keys()].map((tenant) => runtimes.get(tenant)?.clients.api.rate)) });
    let metrics: ConnectorMetrics | undefined;
    if (flags.listen) {
      metrics = new ConnectorMetrics({
        stateDir: state, telemetry, sinkNames: sinks.map((sink) => sink.name), unusableTenantFiles: () => tenants.unusable().length, stalled: () => watch.reasons(),
        tenants: (): MetricsTenant[] => (database === undefined ? [] : [...held].map(([tenant, contentTypes]) => ({
          tenant, store: database!.tenant(tenant), contentTypes, secretExpiresAt: runtimes.get(tenant)?.entry.config.secretExpiresAt, apiRate: runtimes.get(tenant)?.clients.api.rate,
        }))),
      });
      health = await startHealthServer(flags.listen, { metrics, logger, readiness: async () => {
        if (controller.signal.aborted) return { ready: false, reasons: ['stopping'] };
        const reasons = watch.reasons();
        return { ready: reasons.length === 0, reasons };
      } });
    }
    const counting: ConnectorMetrics | undefined = metrics;
    const runtimes: TenantRuntimes = new TenantRuntimes({
      agentFor: (caFile) => agents.agentFor(caFile), flags, logger, telemetry, maxBlobBytes: flags.settings.maxBlobBytes, requestDeadlineMs: flags.settings.requestDeadlineSeconds * 1000,
      ...(counting ? { onApiAnswer: (tenant: string, operation: string, code: string) => counting.apiAnswered(operation, code, tenant) } : {}),
    });
    database = await openWhenReachable(() => openStateDatabaseAt(state, {
      workerName, lockWaitMs: flags.settings.stateLockWaitSeconds * 1000, abortSignal: controller.signal,
      onLockWait: () => logger.warn({ state, waitSeconds: flags.settings.stateLockWaitSeconds }, 'the state directory is locked by another connector (a predecessor still exiting?): waiting for it'),
    }), logger, controller.signal, (reason) => watch.databaseLost(reason));
    watch.databaseBack();
    database.claims.onLost((reason) => watch.databaseLost(redactSecrets(reason.message)));
    if ((await database.tenants()).includes('')) {
      await database.close();
      throw new ConnectorError('STATE_UNCLAIMED_TENANT', `${database.location} holds the state of a single-tenant connector from before fleet mode, of a tenant it did not record`, {
        fix: `run that tenant once on its own (\`run --once --outputs <its outputs file> --state ${state.includes('://') ? '<this store>' : state}\`): its state becomes that tenant's, then start the fleet`,
      });
    }
    logger.info({ component: 'fleet', worker: workerName, state: database.location, tenants: tenants.description }, 'fleet worker starting');
    let summary;
    try {
      summary = await runFleet({
        database, tenants, workerName, since, once: Boolean(flags.once), sinks, telemetry, logger, abortSignal: controller.signal,
        settings: flags.settings, scanIntervalMs: flags.settings.tenantsScanSeconds * 1000, claimIntervalMs: flags.settings.claimIntervalSeconds * 1000,
        runtimes,
        ...(flags.emitHealth ? { emitHealth: true } : {}),
        observer: watchedObserver(watch, metrics),
        onSessionBack: () => watch.databaseBack(),
        onTick: (running) => {
          watch.unitsHeld(running.length);
          held.clear();
          for (const unit of running) held.set(unit.tenant, (held.get(unit.tenant) ?? new Set()).add(unit.contentType));
        },
      });
    } finally {
      held.clear();
      await database.close();
    }
    return endOfRun(logger, summary, { once: Boolean(flags.once), stopped: controller.signal.aborted, every: true });
  } catch (error) {
    if (controller.signal.aborted) return exitCodes.ok;
    throw error;
  } finally {
    dispose();
    await health?.close();
    await agents.close();
  }
}

/**
 * Opens the state, waiting for a database that cannot be reached yet (at boot it often comes up after the workers),
 * with the backoff of a running worker's reconnects (1 s, doubling to 30 s), each attempt logged. A refused login or
 * a missing database is no matter of time: it stops the worker at once.
 */
async function openWhenReachable(open: () => Promise<StateDatabase>, logger: Logger, signal: AbortSignal, onUnreachable: (reason: string) => void): Promise<StateDatabase> {
  const backoff = new ReconnectBackoff();
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await open();
    } catch (error) {
      if (!(error instanceof ConnectorError) || error.code !== 'STATE_UNREACHABLE' || signal.aborted) throw error;
      onUnreachable(redactSecrets(error.toLine()));
      logger.warn({ component: 'fleet', attempt, retryInSeconds: backoff.delayMs / 1000, reason: redactSecrets(error.toLine()) }, 'the state database cannot be reached yet: trying again');
      await backoff.wait(signal);
    }
  }
}

/** The directory of `--tenants`, or the one tenant of `--outputs`/`--stack` (a single tenant with state in a database). */
function tenantSource(flags: RunFlags): TenantSource {
  if (flags.tenants !== undefined) {
    refuseSingleTenantSources(flags);
    const directory = new TenantDirectory(flags.tenants, { contentTypes: flags.contentTypes });
    return { scan: () => directory.scan(), rescans: true, description: directory.dir, unusable: () => directory.unusable };
  }
  let scanned = false;
  return {
    rescans: false,
    unusable: () => [],
    description: flags.outputs ?? flags.stack ?? 'the environment',
    scan: async (): Promise<TenantChanges> => {
      if (scanned) return { added: [], changed: [], removed: [], problems: [] };
      scanned = true;
      const loaded = await loadConfig(flags);
      const entry = { file: flags.outputs ?? '', fingerprint: '', config: loaded.config, reloadCredential: loaded.reloadCredential };
      return { added: [entry], changed: [], removed: [], problems: [] };
    },
  };
}
