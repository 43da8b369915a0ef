import type { Agent } from 'undici';
import { ActivityClient } from '../api/activity-client.ts';
import { createHttpAgent } from '../api/http-agent.ts';
import { MsalTokenProvider } from '../auth/token-provider.ts';
import { loadConfig, type ConfigFlags, type ConnectorConfig } from '../config/config.ts';
import { createLogger, type Logger } from '../status/log.ts';
import { Telemetry } from '../status/telemetry.ts';

export interface GlobalFlags extends ConfigFlags {
  readonly logLevel?: string;
  readonly requestsPerMinute?: number;
  readonly maxInFlight?: number;
}

export interface Runtime {
  readonly config: ConnectorConfig;
  readonly logger: Logger;
  readonly telemetry: Telemetry;
  readonly agent: Agent;
  readonly tokens: MsalTokenProvider;
  readonly api: ActivityClient;
  close(): Promise<void>;
}

/** Configuration -> credentials -> API client, wired once per command. */
export async function createRuntime(flags: GlobalFlags): Promise<Runtime> {
  const logger = createLogger(flags.logLevel ? { level: flags.logLevel } : {});
  const { config, reloadCredential } = await loadConfig(flags);
  const telemetry = new Telemetry();
  const agent = createHttpAgent({ caFile: config.caFile });
  const tokens = new MsalTokenProvider({
    tenantId: config.tenantId, clientId: config.clientId, credential: config.credential,
    authorityHost: config.authorityHost, apiRoot: config.apiRoot, dispatcher: agent, logger, reloadCredential,
  });
  const api = new ActivityClient({
    apiRoot: config.apiRoot, tenantId: config.tenantId, publisherId: config.publisherId, tokens, dispatcher: agent, logger,
    telemetry: telemetry.component('collector', 'source'),
    ...(flags.requestsPerMinute ? { requestsPerMinute: flags.requestsPerMinute } : {}),
    ...(flags.maxInFlight ? { maxInFlight: flags.maxInFlight } : {}),
  });
  logger.debug({ tenantId: config.tenantId, clientId: config.clientId, cloud: config.cloud, apiRoot: config.apiRoot, credential: config.credential.kind }, 'configuration loaded');
  return { config, logger, telemetry, agent, tokens, api, close: () => agent.close() };
}
