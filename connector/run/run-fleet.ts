/**
 * A fleet worker's run: many tenants in one process (`run --tenants <dir>`), their units shared with the other
 * workers of the same state database. Sinks, the commit lane and the fetch slots are the process's; each tenant
 * has its own runtime (tenant-runtimes.ts); which units run here is the scheduler's (unit-scheduler.ts). The
 * tenants' files are read again every scan interval, so that tenants come, go and rotate secrets without a restart.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { serviceHealth } from '../../contract/content-types.ts';
import { ConfigError } from '../core/errors.ts';
import { openCollection, type RunConnectorOptions, type RunSummary } from '../pipeline/run-connector.ts';
import type { Logger } from '../observe/log.ts';
import { redactSecrets } from '../observe/secret-values.ts';
import type { StateDatabase } from '../state/store.ts';
import type { UnitKey } from '../core/commit.ts';
import type { TenantChanges, TenantProblem } from './tenant-directory.ts';
import type { TenantRuntimes } from './tenant-runtimes.ts';
import { UnitScheduler } from './unit-scheduler.ts';

/** Where the fleet's tenants come from: the `--tenants` directory, or the one tenant of `--outputs`. */
export interface TenantSource {
  /** What changed since the last scan (everything, the first time). */
  scan(): Promise<TenantChanges>;
  /** Read again every scan interval (a directory); a fixed source is read once. */
  readonly rescans: boolean;
  /** For messages: the directory, or the outputs file. */
  readonly description: string;
  /** Files that cannot be used as of the last scan (status, metrics). */
  unusable(): readonly TenantProblem[];
}

export interface FleetOptions extends Omit<RunConnectorOptions, 'api' | 'contentTypes' | 'store'> {
  readonly database: StateDatabase;
  readonly tenants: TenantSource;
  readonly workerName: string;
  /** The tenants' runtimes, filled from `tenants` by the run. */
  readonly runtimes: TenantRuntimes;
  /** Between two reads of the tenants' files. */
  readonly scanIntervalMs: number;
  /** Between two looks at the claims: how soon a dead worker's units are taken over. */
  readonly claimIntervalMs: number;
  /** The state database's session is back (reconnected, sinks cut back), before units are claimed again. */
  readonly onSessionBack?: (() => void) | undefined;
  /** What runs after each look at the claims (tests). */
  readonly onTick?: (running: readonly UnitKey[]) => void;
}

export async function runFleet(options: FleetOptions): Promise<RunSummary> {
  const { database, logger, runtimes } = options;
  await applyScan(options.tenants, runtimes, logger);
  if (runtimes.size === 0) {
    if (options.once) throw new ConfigError('--tenants', `${options.tenants.description} holds no usable outputs file`, 'write one `pulumi stack output --json --show-secrets` file per tenant into it');
    logger.warn({ component: 'fleet', tenants: options.tenants.description }, 'no tenant yet: waiting for outputs files to appear');
  }
  const collection = await openCollection({ ...options, store: database.tenant('') });
  try {
    const stop = collection.signal;
    const scheduler = new UnitScheduler({
      claims: database.claims, logger, workerName: options.workerName, tickMs: options.claimIntervalMs, once: options.once,
      desired: () => runtimes.units(),
      beforeClaimingAgain: async () => {
        await collection.rewindSinks();
        options.onSessionBack?.();
      },
      ...(options.onTick ? { onTick: options.onTick } : {}),
      collect: async (unit, signal) => {
        const runtime = runtimes.get(unit.tenant);
        if (!runtime) return;
        const store = database.tenant(unit.tenant);
        // Read after the claim: the unit's previous holder may have moved it until a moment ago.
        const cursor = (await store.cursors()).get(unit.contentType);
        await collection.collect({
          api: runtime.clients.api, ...(unit.contentType === serviceHealth ? { graph: runtime.clients.graph } : {}), contentType: unit.contentType, store, since: options.since, cursor, abortSignal: signal,
          logger: runtime.logger, tenant: unit.tenant, prepare: (prepareSignal) => runtime.subscribe(unit.contentType, prepareSignal),
        });
      },
    });
    const rescans = options.tenants.rescans && !options.once ? (async () => {
      while (!stop.aborted) {
        await delay(options.scanIntervalMs, undefined, { signal: stop }).catch(() => {});
        if (stop.aborted) return;
        await applyScan(options.tenants, runtimes, logger).catch((error: unknown) => {
          logger.error({ component: 'fleet', tenants: options.tenants.description, reason: redactSecrets((error as Error).message) }, 'cannot read the tenants: the tenants known so far carry on');
        });
      }
    })() : Promise.resolve();
    await scheduler.run(stop);
    await rescans;
    return collection.finish();
  } finally {
    await collection.close();
  }
}

async function applyScan(source: TenantSource, runtimes: TenantRuntimes, logger: Logger): Promise<void> {
  const changes = await source.scan();
  for (const problem of changes.problems) {
    const fields = { component: 'fleet', file: problem.file, code: problem.error.code, reason: redactSecrets(problem.error.toLine()) };
    if (problem.keptTenant) logger.warn({ ...fields, tenant: problem.keptTenant }, 'a tenant file cannot be used now (being rewritten?): its tenant carries on with its last good configuration until the file can be used again');
    else logger.error(fields, 'a tenant file cannot be used: it is left out until it changes (the other tenants carry on)');
  }
  for (const file of changes.resolved ?? []) logger.info({ component: 'fleet', file }, 'a tenant file can be used again');
  await runtimes.apply(changes);
}
