import * as pulumi from '@pulumi/pulumi';
import * as azuread from '@pulumi/azuread';

export interface Tenant {
  readonly tenantId: pulumi.Output<string>;
  /** The tenant's initial `*.onmicrosoft.com` domain, which never changes. */
  readonly tenantDomain: pulumi.Output<string>;
  /** Object id of the identity running `pulumi up`. */
  readonly deployerObjectId: pulumi.Output<string>;
}

/**
 * Discovers the tenant the azuread provider is signed in to, instead of asking the user to copy it. Plain lookups
 * (no resources), hence a function rather than a component.
 */
export function discoverTenant(provider: azuread.Provider): Tenant {
  const client = azuread.getClientConfigOutput({ provider });
  const domains = azuread.getDomainsOutput({ onlyInitial: true }, { provider });
  const tenantDomain = domains.domains.apply((list) => {
    const initial = list.find((domain) => domain.initial);
    if (!initial) throw new Error('the tenant reports no initial *.onmicrosoft.com domain; check that the signed-in account belongs to the tenant (azuread:tenantId)');
    return initial.domainName;
  });
  return { tenantId: client.tenantId, tenantDomain, deployerObjectId: client.objectId };
}
