import type { z } from 'zod';
import { contentTypes } from '../../connector/api/content-types.ts';
import { stackOutputsSchema, type StackOutputs } from '../../connector/config/stack-outputs.ts';
import type { Emulator } from './index.ts';

/**
 * The connector configuration for a stand-in, in the form of `pulumi stack output --json --show-secrets`: the
 * stack-outputs contract's fields (checked by its schema, so the stand-in cannot drift from what infra exports),
 * plus caFile for the stand-in's throwaway CA.
 */
export function connectorOutputs(emulator: Emulator): StackOutputs {
  const outputs: z.input<typeof stackOutputsSchema> = {
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
  return stackOutputsSchema.parse(outputs);
}
