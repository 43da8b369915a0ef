import { contentTypes } from '../../connector/api/content-types.ts';
import type { Emulator } from './index.ts';

/** The connector configuration for a stand-in, in the form of `pulumi stack output --json --show-secrets`. */
export function connectorOutputs(emulator: Emulator): Record<string, unknown> {
  return {
    connectorName: 'o365-connector-demo',
    tenantId: emulator.tenantId,
    tenantDomain: emulator.tenantDomain,
    clientId: emulator.clientId,
    clientSecret: emulator.clientSecret,
    clientSecretExpiry: new Date(emulator.now().getTime() + 180 * 86_400_000).toISOString(),
    publisherId: emulator.tenantId,
    cloud: 'commercial',
    contentTypes: [...contentTypes],
    authorityHost: emulator.authorityHost,
    apiRoot: emulator.apiRoot,
    caFile: emulator.caFile,
  };
}
