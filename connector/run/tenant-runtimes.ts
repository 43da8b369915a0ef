/**
 * One runtime per tenant of the run: its configuration, token provider (its own token cache) and API client (its
 * own publisher id and request budget: the quota is per tenant), a logger that labels every line with the tenant,
 * and its subscriptions, started once per content type. A tenant's file that changed only its credential (a
 * rotated secret) swaps the credential in place; any other change builds a new runtime, and its units restart.
 */
import { clouds, graphAuditSearchPermission } from '../../contract/clouds.ts';
import { serviceHealth, type CollectedType } from '../../contract/content-types.ts';
import type { ConnectorConfig } from '../config/config.ts';
import { hasNoSecret, type ClientCredential } from '../config/credential.ts';
import type { RunSettings } from '../config/settings.ts';
import { MsalTokenProvider } from '../auth/token-provider.ts';
import { createHttpAgent, HttpAgentsByCaFile } from '../http/http-agent.ts';
import type { ProxySettings } from '../http/proxy.ts';
import type { RetryPolicyOptions } from '../http/retry.ts';
import { Slots } from '../http/slots.ts';
import { ActivityClient } from '../sources/activity-api/activity-client.ts';
import { auditSource } from '../sources/activity-api/audit-source.ts';
import { BlobFetcher } from '../sources/activity-api/blob-fetcher.ts';
import { ensureSubscription } from '../sources/activity-api/subscriptions.ts';
import { ServiceHealthClient } from '../sources/graph/service-health-client.ts';
import { serviceHealthSource } from '../sources/graph/service-health-source.ts';
import { auditHistorySource, type AuditHistory, type HistorySource } from '../sources/graph/audit-history-source.ts';
import { AuditSearchClient } from '../sources/graph/audit-search-client.ts';
import type { Source } from '../sources/source.ts';
import type { Logger } from '../observe/log.ts';
import type { Telemetry } from '../observe/telemetry.ts';
import type { UnitKey } from '../core/commit.ts';
import { toConnectorError, type ConnectorError } from '../core/errors.ts';
import type { TenantChanges, TenantEntry } from './tenants.ts';
import { forCredential } from './identity-roles.ts';

/**
 * One tenant's token provider and API client: its own token cache, publisher id and request budget (the quota is
 * the tenant's), on the process's shared HTTP agent. Microsoft Graph's (service health) are made on first use: a
 * fleet of tenants that collect none holds none.
 */
export interface TenantClients {
  readonly tokens: MsalTokenProvider;
  readonly api: ActivityClient;
  /** The same app and credential for Graph's audience (a Graph token carries the Graph application permissions). */
  readonly graphTokens: MsalTokenProvider;
  readonly graph: ServiceHealthClient;
  /** Microsoft Graph's audit search (history beyond the API's 7 days), with the tenant's running queries. */
  readonly history: AuditHistory;
  /** Uses `credential` in every token provider made so far; true when it differs from the current one. */
  useCredential(credential: ClientCredential): Promise<boolean>;
}

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
  /** Where the unit's records come from: the Management Activity API's content, or Graph's service health. */
  sourceOf(contentType: CollectedType): Source;
  /** A refusal as this tenant's credential explains it (a managed identity is assigned roles, not consented to). */
  explain(error: ConnectorError): ConnectorError;
  /** Where an audit unit's history beyond the API's 7 days comes from; or why it cannot be read, with the fix. */
  historyOf(contentType: CollectedType): HistorySource | { readonly unavailable: string } | undefined;
}

export interface TenantRuntimesOptions {
  /** The forward proxy to Microsoft, when one is configured. */
  readonly proxy: ProxySettings | undefined;
  readonly logger: Logger;
  readonly telemetry: Telemetry;
  readonly settings: Pick<RunSettings, 'requestsPerMinute' | 'maxInFlight' | 'maxBlobBytes' | 'requestDeadlineSeconds' | 'fetchConcurrency' | 'historyQueries'>;
  /** `test` and `status` answer in seconds: a few quick retries instead of the collector's patient policy. */
  readonly retry?: RetryPolicyOptions;
  /** One tenant's run: its lines need no tenant label. */
  readonly oneTenant?: boolean;
  /** Each answer of a tenant's API (metrics count them per tenant). */
  readonly onApiAnswer?: ((tenant: string, operation: string, code: string) => void) | undefined;
}

/** Warn this long before the client secret expires. */
const secretExpiryWarningMs = 30 * 86_400_000;

export class TenantRuntimes {
  readonly #options: TenantRuntimesOptions;
  readonly #runtimes = new Map<string, TenantRuntime>();
  /** One HTTP agent per CA bundle, shared by the tenants that trust the same. */
  readonly #agents: HttpAgentsByCaFile;
  /** Blob fetches in flight, across every tenant of the process. */
  readonly #fetchSlots: Slots;
  /** The host's managed identity endpoint is local: asked directly, never through the proxy (no connection until used). */
  readonly #identityEndpointAgent = createHttpAgent({ connections: 2 });
  #generation = 0;

  constructor(options: TenantRuntimesOptions) {
    this.#options = options;
    this.#agents = new HttpAgentsByCaFile({ proxy: options.proxy, connections: Math.max(options.settings.maxInFlight, 2) });
    this.#fetchSlots = new Slots(options.settings.fetchConcurrency);
  }

  async close(): Promise<void> {
    await this.#agents.close();
    await this.#identityEndpointAgent.close();
  }

  all(): TenantRuntime[] {
    return [...this.#runtimes.values()];
  }

  get(tenant: string): TenantRuntime | undefined {
    return this.#runtimes.get(tenant);
  }

  /** Every unit of every tenant, with its runtime's generation. */
  units(): Array<{ unit: UnitKey; generation: number }> {
    return [...this.#runtimes.values()].flatMap((runtime) => runtime.entry.config.contentTypes.map((contentType) => ({ unit: { tenant: runtime.tenant, contentType }, generation: runtime.generation })));
  }

  /** Takes the changes of a scan; says, per changed tenant, whether only its credential was swapped. */
  async apply(changes: TenantChanges): Promise<Map<string, { swapped: boolean } | undefined>> {
    const kept = new Map<string, { swapped: boolean } | undefined>();
    for (const tenant of changes.removed) this.#runtimes.delete(tenant);
    for (const entry of changes.added) this.#runtimes.set(entry.config.tenantId, this.#create(entry));
    for (const entry of changes.changed) {
      const current = this.#runtimes.get(entry.config.tenantId);
      if (current && sameExceptCredential(current.entry.config, entry.config)) {
        kept.set(entry.config.tenantId, { swapped: await current.clients.useCredential(entry.config.credential) });
        current.entry = entry;
      } else {
        kept.set(entry.config.tenantId, undefined);
        this.#runtimes.set(entry.config.tenantId, this.#create(entry));
      }
    }
    return kept;
  }

  #create(entry: TenantEntry): TenantRuntime {
    const { config } = entry;
    const logger = this.#options.oneTenant ? this.#options.logger : this.#options.logger.child({ tenant: config.tenantId });
    for (const warning of entry.warnings) this.#options.logger.warn({ component: 'config' }, warning);
    const clients = this.#clientsOf(config, logger, () => entry.reloadCredential());
    logger.debug({ tenantId: config.tenantId, clientId: config.clientId, cloud: config.cloud, apiRoot: config.apiRoot, authorityHost: config.authorityHost, credential: config.credential.kind, stateDir: config.stateDir }, 'configuration loaded');
    if (config.secretExpiresAt && config.secretExpiresAt.getTime() - Date.now() < secretExpiryWarningMs) {
      logger.warn({ clientSecretExpiry: config.secretExpiresAt.toISOString() }, 'the client secret expires soon: rotate it with `npm run pulumi -- config set secretRotation <n+1>` and `npm run pulumi -- up`, then refresh the outputs file');
    }
    if (hasNoSecret(config.credential)) {
      logger.info({ credential: config.credential.kind }, 'no client secret: secret-expiry warnings and the o365_client_secret_expiry_timestamp_seconds metric do not apply to this credential');
    }
    const { api } = clients;
    const onApiAnswer = this.#options.onApiAnswer;
    if (onApiAnswer) api.observeAnswers((operation, code) => onApiAnswer(config.tenantId, operation, code));
    this.#generation += 1;
    let fetcher: BlobFetcher | undefined;
    return {
      tenant: config.tenantId, entry, generation: this.#generation, clients, logger,
      subscribe: (contentType, signal) => (contentType === serviceHealth ? Promise.resolve() : ensureSubscription(api, contentType, signal)),
      sourceOf: (contentType) => (contentType === serviceHealth
        ? serviceHealthSource(clients.graph)
        : auditSource(contentType, api, (fetcher ??= new BlobFetcher(api, this.#fetchSlots)))),
      explain: (error) => toConnectorError(forCredential(error, config.credential)),
      historyOf: (contentType) => {
        if (contentType === serviceHealth) return undefined;
        const unavailable = this.#historyUnavailable(config);
        return unavailable ? { unavailable } : auditHistorySource(contentType, () => clients.history);
      },
    };
  }

  /** Why the tenant's history cannot be read from the audit search (with the fix), or undefined when it can. */
  #historyUnavailable(config: ConnectorConfig): string | undefined {
    if (this.#options.settings.historyQueries === 0) return '--history-queries is 0 (give it 1 or more to read it)';
    if (!clouds[config.cloud].auditSearch) return `the audit search does not exist in the ${config.cloud} cloud (Microsoft Graph's audit log query API is a global service only)`;
    if (config.auditSearch === false) return `the outputs say the app was not granted ${graphAuditSearchPermission} (fix: pulumi config set o365-connector:auditSearch true, pulumi up, and write the outputs file again)`;
    return undefined;
  }

  #clientsOf(config: ConnectorConfig, logger: Logger, reloadCredential: () => Promise<ClientCredential | undefined>): TenantClients {
    const { telemetry, settings, retry } = this.#options;
    const agent = this.#agents.agentFor(config.caFile);
    const tokenOptions = {
      tenantId: config.tenantId, clientId: config.clientId, credential: config.credential,
      authorityHost: config.authorityHost, dispatcher: agent, logger, reloadCredential,
      identityEndpointDispatcher: this.#identityEndpointAgent,
    };
    const tokens = new MsalTokenProvider({ ...tokenOptions, apiRoot: config.apiRoot });
    const api = new ActivityClient({
      apiRoot: config.apiRoot, tenantId: config.tenantId, publisherId: config.publisherId, tokens, dispatcher: agent, logger,
      telemetry: telemetry.component('collector', 'source'),
      requestsPerMinute: settings.requestsPerMinute, maxInFlight: settings.maxInFlight,
      maxBlobBytes: settings.maxBlobBytes, requestDeadlineMs: settings.requestDeadlineSeconds * 1000,
      ...(retry ? { retry } : {}),
    });
    let graphTokens: MsalTokenProvider | undefined;
    let graph: ServiceHealthClient | undefined;
    let history: AuditHistory | undefined;
    const onAnswer = this.#options.onApiAnswer;
    const graphTokensOf = () => (graphTokens ??= new MsalTokenProvider({ ...tokenOptions, apiRoot: config.graphRoot }));
    return {
      tokens, api,
      get graphTokens() {
        return graphTokensOf();
      },
      get graph() {
        return (graph ??= new ServiceHealthClient({
          graphRoot: config.graphRoot, tokens: graphTokensOf(), dispatcher: agent, logger, telemetry: telemetry.component('graph', 'source'),
          // Graph pages by position: the largest page (1,000) leaves the fewest boundaries for a change to slip between.
          pageSize: 1000,
          ...(retry ? { retry } : {}),
        }));
      },
      get history() {
        return (history ??= {
          api: new AuditSearchClient({
            graphRoot: config.graphRoot, tenant: config.tenantId, tokens: graphTokensOf(), dispatcher: agent, logger, telemetry: telemetry.component('graph', 'source'),
            ...(onAnswer ? { onAnswer: (url: string, code: string) => onAnswer(config.tenantId, auditSearchOperationOf(url), code) } : {}),
            ...(retry ? { retry } : {}),
          }),
          slots: new Slots(settings.historyQueries),
        });
      },
      async useCredential(credential) {
        // A new credential may carry the permission the old one lacked: the history asks again.
        if (history) history.forbidden = undefined;
        const swapped = await tokens.useCredential(credential);
        if (graphTokens) await graphTokens.useCredential(credential);
        return swapped;
      },
    };
  }
}

/** The audit search's operation a URL calls, as metrics name it. */
function auditSearchOperationOf(url: string): string {
  const path = new URL(url).pathname;
  return path.endsWith('/records') ? 'auditSearch.records' : /\/queries\/[^/]+$/.test(path) ? 'auditSearch.poll' : 'auditSearch.query';
}

/** What a change must leave alone for the runtime to carry on with only the credential swapped. */
function sameExceptCredential(a: ConnectorConfig, b: ConnectorConfig): boolean {
  return a.clientId === b.clientId && a.publisherId === b.publisherId && a.apiRoot === b.apiRoot && a.authorityHost === b.authorityHost
    && a.graphRoot === b.graphRoot && a.auditSearch === b.auditSearch && a.caFile === b.caFile && a.contentTypes.join() === b.contentTypes.join();
}
