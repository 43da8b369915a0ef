import type { Dispatcher } from 'undici';
import { ActivityClient } from '../sources/activity-api/activity-client.ts';
import { createHttpAgent } from '../http/http-agent.ts';
import { proxySettings, type ProxySettings } from '../http/proxy.ts';
import type { RetryPolicyOptions } from '../http/retry.ts';
import { MsalTokenProvider } from '../auth/token-provider.ts';
import { type ClientCredential } from '../config/credential.ts';
import { ServiceHealthClient } from '../sources/graph/service-health-client.ts';
import { loadConfig, type ConfigFlags, type ConnectorConfig } from '../config/config.ts';
import { createLogger, type Logger } from '../observe/log.ts';
import { Telemetry } from '../observe/telemetry.ts';

export interface GlobalFlags extends ConfigFlags {
  readonly logLevel?: string | undefined;
  readonly requestsPerMinute?: number | undefined;
  readonly maxInFlight?: number | undefined;
  /** Forward proxy URL for the calls to Microsoft (--proxy, O365_PROXY; else HTTPS_PROXY). */
  readonly proxy?: string | undefined;
}

export interface Runtime {
  readonly config: ConnectorConfig;
  readonly logger: Logger;
  readonly telemetry: Telemetry;
  readonly agent: Dispatcher;
  /** The forward proxy to Microsoft, when one is configured. */
  readonly proxy: ProxySettings | undefined;
  readonly tokens: MsalTokenProvider;
  readonly api: ActivityClient;
  /** Tokens for Microsoft Graph (`${graphRoot}/.default`) and its service announcements (ServiceHealth). */
  readonly graphTokens: MsalTokenProvider;
  readonly graph: ServiceHealthClient;
  close(): Promise<void>;
}

/** Warn this long before the client secret expires. */
const secretExpiryWarningMs = 30 * 86_400_000;

export function loggerFor(flags: GlobalFlags): Logger {
  return createLogger(flags.logLevel ? { level: flags.logLevel } : {});
}

export interface TenantClientOptions {
  readonly agent: Dispatcher;
  readonly logger: Logger;
  readonly telemetry: Telemetry;
  readonly reloadCredential?: () => Promise<ClientCredential | undefined>;
  readonly flags: Pick<GlobalFlags, 'requestsPerMinute' | 'maxInFlight'>;
  readonly retry?: RetryPolicyOptions;
  readonly maxBlobBytes?: number;
  readonly requestDeadlineMs?: number;
}

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
  /** Uses `credential` in every token provider made so far; true when it differs from the current one. */
  useCredential(credential: ClientCredential): Promise<boolean>;
}

export function createTenantClients(config: ConnectorConfig, options: TenantClientOptions): TenantClients {
  const { agent, logger, flags } = options;
  const tokenOptions = {
    tenantId: config.tenantId, clientId: config.clientId, credential: config.credential,
    authorityHost: config.authorityHost, dispatcher: agent, logger,
    ...(options.reloadCredential ? { reloadCredential: options.reloadCredential } : {}),
  };
  const tokens = new MsalTokenProvider({ ...tokenOptions, apiRoot: config.apiRoot });
  const api = new ActivityClient({
    apiRoot: config.apiRoot, tenantId: config.tenantId, publisherId: config.publisherId, tokens, dispatcher: agent, logger,
    telemetry: options.telemetry.component('collector', 'source'),
    ...(flags.requestsPerMinute ? { requestsPerMinute: flags.requestsPerMinute } : {}),
    ...(flags.maxInFlight ? { maxInFlight: flags.maxInFlight } : {}),
    ...(options.retry ? { retry: options.retry } : {}),
    ...(options.maxBlobBytes ? { maxBlobBytes: options.maxBlobBytes } : {}),
    ...(options.requestDeadlineMs ? { requestDeadlineMs: options.requestDeadlineMs } : {}),
  });
  let graphTokens: MsalTokenProvider | undefined;
  let graph: ServiceHealthClient | undefined;
  const graphTokensOf = () => (graphTokens ??= new MsalTokenProvider({ ...tokenOptions, apiRoot: config.graphRoot }));
  return {
    tokens, api,
    get graphTokens() {
      return graphTokensOf();
    },
    get graph() {
      return (graph ??= new ServiceHealthClient({
        graphRoot: config.graphRoot, tokens: graphTokensOf(), dispatcher: agent, logger, telemetry: options.telemetry.component('graph', 'source'),
        // Graph pages by position: the largest page (1,000) leaves the fewest boundaries for a change to slip between.
        pageSize: 1000,
        ...(options.retry ? { retry: options.retry } : {}),
      }));
    },
    async useCredential(credential) {
      const swapped = await tokens.useCredential(credential);
      if (graphTokens) await graphTokens.useCredential(credential);
      return swapped;
    },
  };
}

/** Configuration -> credentials -> API client, wired once per command. */
export async function createRuntime(flags: GlobalFlags, options: { retry?: RetryPolicyOptions; logger?: Logger; maxBlobBytes?: number; requestDeadlineMs?: number } = {}): Promise<Runtime> {
  const logger = options.logger ?? loggerFor(flags);
  const { config, reloadCredential, warnings } = await loadConfig(flags);
  for (const warning of warnings) logger.warn({ component: 'config' }, warning);
  const telemetry = new Telemetry();
  const proxy = proxySettings(process.env, flags.proxy);
  const agent = createHttpAgent({ caFile: config.caFile, proxy, ...(flags.maxInFlight ? { connections: Math.max(flags.maxInFlight, 2) } : {}) });
  const { tokens, api, graphTokens, graph } = createTenantClients(config, { agent, logger, telemetry, reloadCredential, flags, ...options });
  logger.debug({ tenantId: config.tenantId, clientId: config.clientId, cloud: config.cloud, apiRoot: config.apiRoot, authorityHost: config.authorityHost, credential: config.credential.kind, stateDir: config.stateDir }, 'configuration loaded');
  if (config.secretExpiresAt && config.secretExpiresAt.getTime() - Date.now() < secretExpiryWarningMs) {
    logger.warn({ clientSecretExpiry: config.secretExpiresAt.toISOString() }, 'the client secret expires soon: rotate it with `npm run pulumi -- config set secretRotation <n+1>` and `npm run pulumi -- up`, then refresh the outputs file');
  }
  return { config, logger, telemetry, agent, proxy, tokens, api, graphTokens, graph, close: () => agent.close() };
}
