/**
 * The one run path: the tenants of a tenant source (one fixed tenant, or a directory of many) in one process, their
 * units shared with the other workers of the same state. Sinks, the commit lane and the fetch slots are the process's;
 * each tenant has its own runtime (tenant-runtimes.ts); which units run here is the scheduler's (scheduler.ts). A
 * directory is read again every scan interval, so that tenants come, go and rotate secrets without a restart.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { RunConfiguration } from '../config/run-config.ts';
import { isPostgresUrl } from '../config/state-location.ts';
import { ConfigError, ConnectorError } from '../core/errors.ts';
import { retry } from '../http/retry.ts';
import type { UnitKey } from '../core/commit.ts';
import type { Logger } from '../observe/log.ts';
import { redactSecrets } from '../observe/secret-values.ts';
import type { Telemetry } from '../observe/telemetry.ts';
import { openDelivery } from '../pipeline/delivery.ts';
import { UnitLoop, type CollectionOptions } from '../pipeline/unit-loop.ts';
import type { RunSummary } from '../core/counts.ts';
import { createSink, refuseSharedSinks } from '../sinks/spec.ts';
import type { Sink } from '../sinks/sink.ts';
import { retentionMs } from '../sources/activity-api/activity-api.ts';
import { earliestListable } from '../sources/activity-api/windows.ts';
import { openStateDatabaseAt } from '../state/open-database.ts';
import type { StateDatabase } from '../state/store.ts';
import { reconnectPolicy } from './reconnect.ts';
import { sinkIdentityOf } from './sink-identity.ts';
import { UnitScheduler } from './scheduler.ts';
import { TenantRuntimes } from './tenant-runtimes.ts';
import { tenantSourceOf, type TenantSource } from './tenants.ts';

export interface WorkerHooks {
  /** The run's stop (SIGINT/SIGTERM). */
  readonly signal: AbortSignal;
  /** What metrics and the stall watch count. */
  readonly observer?: CollectionOptions['observer'];
  /** Each commit, per content type (the terminal's progress lines). */
  readonly onProgress?: CollectionOptions['onProgress'];
  /** The state cannot be reached (at start, or its session was lost). */
  readonly onStateLost?: (reason: string) => void;
  /** The state is reachable (opened, or reconnected and the sinks cut back). */
  readonly onStateBack?: () => void;
  /** The state is open (its figures can be read) or closed (undefined). */
  readonly onStateOpen?: (database: StateDatabase | undefined) => void;
  /** What runs after each look at the claims. */
  readonly onTick?: (running: readonly UnitKey[]) => void;
}

export class Worker {
  readonly config: RunConfiguration;
  readonly tenants: TenantSource;
  readonly runtimes: TenantRuntimes;
  readonly sinks: readonly Sink[];
  readonly logger: Logger;
  readonly telemetry: Telemetry;
  #answers: ((tenant: string, operation: string, code: string) => void) | undefined;

  /** Reads the tenants (a fixed tenant's configuration now, before anything is opened), builds their runtimes and the sinks. */
  static async prepare(config: RunConfiguration, options: { readonly logger: Logger; readonly telemetry: Telemetry }): Promise<Worker> {
    const worker = new Worker(config, await tenantSourceOf(config.tenants), options.logger, options.telemetry);
    try {
      await worker.#applyScan();
    } catch (error) {
      await worker.close();
      throw error;
    }
    return worker;
  }

  private constructor(config: RunConfiguration, tenants: TenantSource, logger: Logger, telemetry: Telemetry) {
    this.config = config;
    this.tenants = tenants;
    this.logger = logger;
    this.telemetry = telemetry;
    this.runtimes = new TenantRuntimes({
      proxy: config.proxy, logger, telemetry, settings: config.settings, oneTenant: !config.fleet,
      onApiAnswer: (tenant, operation, code) => this.#answers?.(tenant, operation, code),
    });
    refuseSharedSinks(config.sinks, process.env);
    const sinkContext = { env: process.env, telemetry, logger, lockWaitMs: config.settings.stateLockWaitSeconds * 1000, proxy: config.proxy, identity: sinkIdentityOf(tenants.fixed, logger) };
    this.sinks = config.sinks.map((spec) => createSink(spec, sinkContext));
  }

  /** Each answer of a tenant's API (metrics). */
  observeAnswers(listener: (tenant: string, operation: string, code: string) => void): void {
    this.#answers = listener;
  }

  /** Collects until stopped (or, --once, until everything available now is delivered); the state is opened and closed here. */
  async run(hooks: WorkerHooks): Promise<RunSummary> {
    const { config, logger } = this;
    // More than 7 days back (a minute's slack for the default, 7d): the windows start at the API's limit instead.
    if (config.since.getTime() < Date.now() - retentionMs - 60_000) {
      logger.warn({ since: config.sinceText, startsAt: new Date(earliestListable(Date.now())).toISOString() }, '--since is further back than the 7 days the API keeps content: a first run collects live from the oldest content it can list, and reads what is older from the audit search (history)');
    }
    const database = await this.#openState(hooks);
    hooks.onStateBack?.();
    database.claims.onLost((reason) => hooks.onStateLost?.(redactSecrets(reason.message)));
    hooks.onStateOpen?.(database);
    if (config.fleet) logger.info({ component: 'fleet', worker: config.workerName, state: database.location, tenants: this.tenants.description }, 'fleet worker starting');
    try {
      return await this.#collect(database, hooks);
    } finally {
      hooks.onStateOpen?.(undefined);
      await database.close();
    }
  }

  async close(): Promise<void> {
    await this.runtimes.close();
  }

  /**
   * Opens the state, waiting for a database that cannot be reached yet (each attempt logged). A refused login or a
   * missing database is no matter of time: it stops the worker at once. A fixed tenant's state directory adopts the
   * state of before fleet mode (tenant ''); a fleet refuses it.
   */
  async #openState(hooks: WorkerHooks): Promise<StateDatabase> {
    const { config, logger } = this;
    const { state } = config;
    const fixed = this.tenants.fixed;
    const adoptLegacyTenant = fixed && !isPostgresUrl(state) ? fixed.config.tenantId : undefined;
    const waitSeconds = config.settings.stateLockWaitSeconds;
    const database = await retry(() => openStateDatabaseAt(state, {
      workerName: config.workerName, lockWaitMs: waitSeconds * 1000, abortSignal: hooks.signal, adoptLegacyTenant,
      onLockWait: () => logger.warn({ ...(adoptLegacyTenant ? { stateDir: fixed!.config.stateDir } : { state }), waitSeconds }, 'the state directory is locked by another connector (a predecessor still exiting?): waiting for it'),
    }), {
      policy: reconnectPolicy, signal: hooks.signal,
      judge: (error) => ({ retry: error instanceof ConnectorError && error.code === 'STATE_UNREACHABLE' }),
      onRetry: ({ error, attempt, delayMs }) => {
        const reason = redactSecrets(error.toLine());
        hooks.onStateLost?.(reason);
        logger.warn({ component: 'fleet', attempt, retryInSeconds: delayMs / 1000, reason }, 'the state database cannot be reached yet: trying again');
      },
    });
    if (adoptLegacyTenant === undefined && (await database.tenants()).includes('')) {
      await database.close();
      throw new ConnectorError('STATE_UNCLAIMED_TENANT', `${database.location} holds the state of a single-tenant connector from before fleet mode, of a tenant it did not record`, {
        fix: `run that tenant once on its own (\`run --once --outputs <its outputs file> --state ${state.includes('://') ? '<this store>' : state}\`): its state becomes that tenant's, then start the fleet`,
      });
    }
    return database;
  }

  async #collect(database: StateDatabase, hooks: WorkerHooks): Promise<RunSummary> {
    const { config, logger, runtimes } = this;
    if (runtimes.all().length === 0) {
      if (config.once) throw new ConfigError('--tenants', `${this.tenants.description} holds no usable outputs file`, 'write one `pulumi stack output --json --show-secrets` file per tenant into it');
      logger.warn({ component: 'fleet', tenants: this.tenants.description }, 'no tenant yet: waiting for outputs files to appear');
    }
    const delivery = await openDelivery({ store: database.tenant(''), sinks: this.sinks, logger, abortSignal: hooks.signal, ...(hooks.observer ? { observer: hooks.observer } : {}) });
    const run: CollectionOptions = {
      telemetry: this.telemetry, settings: config.settings,
      ...(config.emitHealth ? { emitHealth: true } : {}),
      ...(hooks.observer ? { observer: hooks.observer } : {}),
      ...(hooks.onProgress ? { onProgress: hooks.onProgress } : {}),
    };
    try {
      // One tenant's state is read whole before its units start: a cursor that cannot be read stops the run (a fleet's unit logs it and is claimed again).
      if (!config.fleet) for (const runtime of runtimes.all()) await database.tenant(runtime.tenant).cursors();
      const stop = delivery.signal;
      const scheduler = new UnitScheduler({
        claims: database.claims, logger, workerName: config.workerName, tickMs: config.settings.claimIntervalSeconds * 1000, once: config.once, logClaims: config.fleet,
        desired: () => runtimes.units(),
        beforeClaimingAgain: async () => {
          await delivery.rewindSinks();
          hooks.onStateBack?.();
        },
        ...(hooks.onTick ? { onTick: hooks.onTick } : {}),
        collect: async (unit, signal) => {
          const runtime = runtimes.get(unit.tenant);
          if (!runtime) return;
          const store = database.tenant(unit.tenant);
          // Read after the claim: the unit's previous holder may have moved it until a moment ago.
          const cursor = (await store.cursors()).get(unit.contentType);
          const loop = new UnitLoop({
            source: runtime.sourceOf(unit.contentType), history: runtime.historyOf(unit.contentType), explain: (error) => runtime.explain(error), store, cursor, since: config.since, logger: runtime.logger,
            ...(config.fleet ? { tenant: unit.tenant } : {}), prepare: (prepareSignal) => runtime.subscribe(unit.contentType, prepareSignal),
          }, delivery, run);
          await (config.once ? loop.runOnce(signal) : loop.run(signal));
        },
      });
      const rescans = this.tenants.fixed === undefined && !config.once ? (async () => {
        while (await delay(config.settings.tenantsScanSeconds * 1000, true, { signal: stop }).catch(() => false)) {
          await this.#applyScan().catch((error: unknown) => {
            logger.error({ component: 'fleet', tenants: this.tenants.description, reason: redactSecrets((error as Error).message) }, 'cannot read the tenants: the tenants known so far carry on');
          });
        }
      })() : Promise.resolve();
      await scheduler.run(stop);
      await rescans;
      const summary = delivery.finish();
      // One tenant's --once: an error no retry can fix ends the run with it (a fleet reports every unit's errors instead).
      if (config.once && !config.fleet && delivery.fatal && !hooks.signal.aborted) throw delivery.fatal;
      return summary;
    } finally {
      await delivery.close();
    }
  }

  async #applyScan(): Promise<void> {
    const { logger } = this;
    const changes = await this.tenants.scan();
    for (const problem of changes.problems) {
      const fields = { component: 'fleet', file: problem.file, code: problem.error.code, reason: redactSecrets(problem.error.toLine()) };
      if (problem.keptTenant) logger.warn({ ...fields, tenant: problem.keptTenant }, 'a tenant file cannot be used now (being rewritten?): its tenant carries on with its last good configuration until the file can be used again');
      else logger.error(fields, 'a tenant file cannot be used: it is left out until it changes (the other tenants carry on)');
    }
    for (const file of changes.resolved ?? []) logger.info({ component: 'fleet', file }, 'a tenant file can be used again');
    const kept = await this.runtimes.apply(changes);
    // One tenant's run names no tenant: its lines read as they always have.
    if (!this.config.fleet) return;
    for (const tenant of changes.removed) logger.info({ component: 'fleet', tenant }, 'tenant removed: its units stop (its state is kept)');
    for (const entry of changes.added) logger.info({ component: 'fleet', tenant: entry.config.tenantId, file: entry.file, contentTypes: entry.config.contentTypes }, 'tenant added');
    for (const entry of changes.changed) {
      const credential = kept.get(entry.config.tenantId);
      if (credential) logger.info({ component: 'fleet', tenant: entry.config.tenantId, file: entry.file, credentialChanged: credential.swapped }, credential.swapped ? 'tenant credential changed (rotated): the new one is used from now on' : 'tenant file changed');
      else logger.info({ component: 'fleet', tenant: entry.config.tenantId, file: entry.file }, 'tenant configuration changed: its units restart with it');
    }
  }
}
