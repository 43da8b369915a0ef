import type { z } from 'zod';
import { graphAuditSearchPermission } from '../../contract/clouds.ts';
import { contentTypes } from '../../contract/content-types.ts';
import { stackOutputsSchema, type StackOutputs } from '../../contract/stack-outputs.ts';
import type { EmulatorTenant } from './tenant.ts';

/** What the outputs are made of: a tenant of the stand-in, or the stand-in itself (its first tenant). */
export type OutputsSource = Pick<EmulatorTenant, 'tenantId' | 'tenantDomain' | 'clientId' | 'clientSecret' | 'now' | 'authorityHost' | 'apiRoot' | 'caFile'> & { readonly graphRoot?: string; graphRoles?(): readonly string[] };

/**
 * The connector configuration for a stand-in's tenant, in the form of `pulumi stack output --json --show-secrets`: the
 * stack-outputs contract's fields (checked by its schema, so the stand-in cannot drift from what infra exports),
 * plus caFile for the stand-in's throwaway CA. `auditSearch: true` when the tenant's Graph roles grant the audit search
 * (as a stack whose consent covers AuditLogsQuery.Read.All exports it); absent otherwise, as outputs that do not know.
 */
export function connectorOutputs(source: OutputsSource): StackOutputs {
  const outputs: z.input<typeof stackOutputsSchema> = {
    connectorName: 'o365-connector-demo',
    tenantId: source.tenantId,
    tenantDomain: source.tenantDomain,
    clientId: source.clientId,
    clientSecret: source.clientSecret,
    clientSecretExpiry: new Date(source.now().getTime() + 180 * 86_400_000).toISOString(),
    publisherId: source.tenantId,
    cloud: 'commercial',
    contentTypes: [...contentTypes],
    authorityHost: source.authorityHost,
    apiRoot: source.apiRoot,
    // The audit content types only: a test that wants ServiceHealth names it (as a stack with serviceHealth on exports it).
    ...(source.graphRoot ? { graphRoot: source.graphRoot } : {}),
    ...(source.graphRoles?.().includes(graphAuditSearchPermission) ? { auditSearch: true } : {}),
    caFile: source.caFile,
  };
  return stackOutputsSchema.parse(outputs);
}
