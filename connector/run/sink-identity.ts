/**
 * The connector's own identity as the sinks that sign in to Microsoft use it (Sentinel's Logs Ingestion API): the
 * fixed tenant's app and credential, asked for tokens of another audience by a token provider of its own (its own
 * cache), re-reading the credential from the same source when it is rejected, as the tenant's other providers do.
 */
import { MsalTokenProvider } from '../auth/token-provider.ts';
import type { Logger } from '../observe/log.ts';
import type { SinkIdentity } from '../sinks/sink.ts';
import type { TenantEntry } from './tenants.ts';

/** Undefined for a fleet of many tenants (no single identity). */
export function sinkIdentityOf(fixed: TenantEntry | undefined, logger: Logger): SinkIdentity | undefined {
  if (!fixed) return undefined;
  const { config } = fixed;
  return {
    cloud: config.cloud,
    caFile: config.caFile,
    sentinel: config.sentinel,
    tokensFor: (audience, dispatcher) => new MsalTokenProvider({
      tenantId: config.tenantId, clientId: config.clientId, credential: config.credential, authorityHost: config.authorityHost,
      apiRoot: audience, dispatcher, logger, reloadCredential: () => fixed.reloadCredential(),
    }),
  };
}
