/**
 * One runtime per tenant of the fleet: its configuration, token provider (its own token cache) and API client (its
 * own publisher id and request budget: the quota is per tenant), a logger that labels every line with the tenant,
 * and its subscriptions, started once per content type. A tenant's file that changed only its credential (a
 * rotated secret) swaps the credential in place; any other change builds a new runtime, and its units restart.
 */
import type { Dispatcher } from 'undici';
import { serviceHealth, type CollectedType } from '../../contract/content-types.ts';
import type { ConnectorConfig } from '../config/config.ts';
import { createTenantClients, type TenantClientOptions, type TenantClients } from '../cli/runtime.ts';
import type { Logger } from '../observe/log.ts';
import type { UnitKey } from '../core/commit.ts';
import type { TenantChanges, TenantEntry } from './tenant-directory.ts';

export interface TenantRuntime {
  readonly tenant: string;
  entry: TenantEntry;
  /** Grows with each new runtime of the tenant: a unit started under an older one restarts. */
  readonly generation: number;
  /** The tenant's token providers and clients (Microsoft Graph's made when a ServiceHealth unit first asks). */
  readonly clients: TenantClients;
  readonly logger: Logger;
  /** Starts the content type's subscription once (idempotent at the API too); later calls return at once. ServiceHealth has none. */
  subscribe(contentType: CollectedType, signal: AbortSignal): Promise<void>;
}

export interface TenantRuntimesOptions extends Omit<TenantClientOptions, 'agent' | 'reloadCredential'> {
  /** The HTTP agent for a tenant's endpoints (one per CA bundle; shared by the tenants that trust the same). */
  readonly agentFor: (caFile: string | undefined) => Dispatcher;
  /** Each answer of a tenant's API (metrics count them per tenant). */
  readonly onApiAnswer?: ((tenant: string, operation: string, code: string) => void) | undefined;
}

export class TenantRuntimes {
  readonly #options: TenantRuntimesOptions;
  readonly #runtimes = new Map<string, TenantRuntime>();
  #generation = 0;

  constructor(options: TenantRuntimesOptions) {
    this.#options = options;
  }

  all(): TenantRuntime[] {
    return [...this.#runtimes.values()];
  }

  get(tenant: string): TenantRuntime | undefined {
    return this.#runtimes.get(tenant);
  }

  get size(): number {
    return this.#runtimes.size;
  }

  /** Every unit of every tenant, with its runtime's generation. */
  units(): Array<{ unit: UnitKey; generation: number }> {
    return [...this.#runtimes.values()].flatMap((runtime) => runtime.entry.config.contentTypes.map((contentType) => ({ unit: { tenant: runtime.tenant, contentType }, generation: runtime.generation })));
  }

  async apply(changes: TenantChanges): Promise<void> {
    const { logger } = this.#options;
    for (const tenant of changes.removed) {
      this.#runtimes.delete(tenant);
      logger.info({ component: 'fleet', tenant }, 'tenant removed: its units stop (its state is kept)');
    }
    for (const entry of changes.added) {
      this.#runtimes.set(entry.config.tenantId, this.#create(entry));
      logger.info({ component: 'fleet', tenant: entry.config.tenantId, file: entry.file, contentTypes: entry.config.contentTypes }, 'tenant added');
    }
    for (const entry of changes.changed) {
      const current = this.#runtimes.get(entry.config.tenantId);
      if (current && sameExceptCredential(current.entry.config, entry.config)) {
        const swapped = await current.clients.useCredential(entry.config.credential);
        current.entry = entry;
        logger.info({ component: 'fleet', tenant: entry.config.tenantId, file: entry.file, credentialChanged: swapped }, swapped ? 'tenant credential changed (rotated): the new one is used from now on' : 'tenant file changed');
      } else {
        this.#runtimes.set(entry.config.tenantId, this.#create(entry));
        logger.info({ component: 'fleet', tenant: entry.config.tenantId, file: entry.file }, 'tenant configuration changed: its units restart with it');
      }
    }
  }

  #create(entry: TenantEntry): TenantRuntime {
    const { config } = entry;
    const logger = this.#options.logger.child({ tenant: config.tenantId });
    const clients = createTenantClients(config, { ...this.#options, logger, agent: this.#options.agentFor(config.caFile), reloadCredential: () => entry.reloadCredential() });
    const { api } = clients;
    const onApiAnswer = this.#options.onApiAnswer;
    if (onApiAnswer) api.observeAnswers((operation, code) => onApiAnswer(config.tenantId, operation, code));
    const subscribed = new Map<CollectedType, Promise<void>>();
    this.#generation += 1;
    return {
      tenant: config.tenantId, entry, generation: this.#generation, clients, logger,
      subscribe(contentType, signal) {
        if (contentType === serviceHealth) return Promise.resolve();
        let started = subscribed.get(contentType);
        if (!started) {
          started = api.startSubscription(contentType, { abortSignal: signal }).then(() => {});
          subscribed.set(contentType, started);
          // A failed start is tried again by the unit's next pass.
          started.catch(() => subscribed.delete(contentType));
        }
        return started;
      },
    };
  }
}

/** What a change must leave alone for the runtime to carry on with only the credential swapped. */
function sameExceptCredential(a: ConnectorConfig, b: ConnectorConfig): boolean {
  return a.clientId === b.clientId && a.publisherId === b.publisherId && a.apiRoot === b.apiRoot && a.authorityHost === b.authorityHost
    && a.graphRoot === b.graphRoot && a.caFile === b.caFile && a.contentTypes.join() === b.contentTypes.join();
}
