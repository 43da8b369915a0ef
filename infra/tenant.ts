import * as pulumi from '@pulumi/pulumi';
import * as azuread from '@pulumi/azuread';

export interface Tenant {
  readonly tenantId: pulumi.Output<string>;
  /** The tenant's initial `*.onmicrosoft.com` domain, which never changes. */
  readonly tenantDomain: pulumi.Output<string>;
}

/** Discovers the tenant the azuread provider is signed in to, instead of asking the user to copy it. */
export function discoverTenant(provider: azuread.Provider): Tenant {
  const client = azuread.getClientConfigOutput({ provider });
  const domains = azuread.getDomainsOutput({ onlyInitial: true }, { provider });
  const tenantDomain = domains.domains.apply((list) => {
    const initial = list.find((domain) => domain.initial) ?? list[0];
    if (!initial) throw new Error('the tenant reports no initial *.onmicrosoft.com domain; check that the signed-in account belongs to the tenant');
    return initial.domainName;
  });
  return { tenantId: client.tenantId, tenantDomain };
}
