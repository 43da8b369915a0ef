import * as pulumi from '@pulumi/pulumi';
import * as azuread from '@pulumi/azuread';
import type { GraphPermission } from './graph-permissions.ts';
import { configNamespace, type PermissionName } from './config.ts';
import { grantAdminConsent, grantGraphConsent, graphPermissions, managementApiPermissions } from './admin-consent.ts';

/** An existing managed identity, as its service principal tells: its client id, and whether it is user-assigned. */
export interface ManagedIdentity {
  readonly objectId: string;
  readonly clientId: string;
  /** User-assigned (its own Azure resource, named by client id); otherwise a host's system-assigned identity. */
  readonly userAssigned: boolean;
}

/**
 * Looks the identity up by object id before anything is declared, so that the outputs can say whether the connector
 * names it (user-assigned) or not (system-assigned). A service principal that is no managed identity is refused in one
 * line: a managed identity's alternative names hold its Azure resource id.
 */
export async function managedIdentityOf(principalObjectId: string, provider: azuread.Provider): Promise<ManagedIdentity> {
  let found: azuread.GetServicePrincipalResult;
  try {
    found = await azuread.getServicePrincipal({ objectId: principalObjectId }, { provider });
  } catch {
    throw new pulumi.RunError(`${configNamespace}:managedIdentityPrincipalId: no service principal ${principalObjectId} in this tenant; use the identity's principal id (az identity show --query principalId, or az vm identity show --query principalId), not its client id`);
  }
  const resourceIds = found.alternativeNames.filter((name) => name.toLowerCase().startsWith('/subscriptions/'));
  if (resourceIds.length === 0) {
    throw new pulumi.RunError(`${configNamespace}:managedIdentityPrincipalId: ${principalObjectId} is the service principal of "${found.displayName}", not a managed identity; use credential secret, certificate or federated for an app`);
  }
  return {
    objectId: principalObjectId, clientId: found.clientId,
    userAssigned: resourceIds.some((id) => id.toLowerCase().includes('/providers/microsoft.managedidentity/userassignedidentities/')),
  };
}

export interface ManagedIdentityRolesArgs {
  /** The managed identity's service principal (object id). */
  readonly principalObjectId: string;
  /** Office 365 Management APIs application permissions: one app role assignment each. */
  readonly permissions: readonly PermissionName[];
  /** Microsoft Graph application permissions of the features that are on: one app role assignment each. */
  readonly graphPermissions: readonly GraphPermission[];
  readonly provider: azuread.Provider;
}

/**
 * A managed identity is a service principal without an app registration or a secret: it gets the application
 * permissions as app role assignments (the portal has no screen for them), looked up by value on the resources'
 * service principals as an app's consent is. No delegated permission: a managed identity never signs in a user.
 */
export class ManagedIdentityRoles extends pulumi.ComponentResource {
  readonly roleAssignments: azuread.AppRoleAssignment[];
  readonly graphRoleAssignments: azuread.AppRoleAssignment[];

  constructor(name: string, args: ManagedIdentityRolesArgs, options: pulumi.ComponentResourceOptions = {}) {
    super('o365-connector:index:ManagedIdentityRoles', name, {}, options);
    const child = { parent: this, provider: args.provider };
    const resource = managementApiPermissions(args.permissions, [], child);
    this.roleAssignments = grantAdminConsent(name, { permissions: args.permissions, delegatedPermissions: [], servicePrincipalObjectId: args.principalObjectId, resource }, child).roleAssignments;
    this.graphRoleAssignments = args.graphPermissions.length > 0
      ? grantGraphConsent(name, args.graphPermissions, args.principalObjectId, graphPermissions(args.graphPermissions, child), child)
      : [];
    this.registerOutputs({ principalObjectId: args.principalObjectId });
  }
}
