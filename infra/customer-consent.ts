import * as pulumi from '@pulumi/pulumi';
import * as azuread from '@pulumi/azuread';
import type { PermissionName } from './config.ts';
import { grantAdminConsent, grantGraphConsent, graphPermissions, managementApiPermissions } from './admin-consent.ts';
import type { GraphPermission } from './graph-permissions.ts';

export interface CustomerConsentArgs {
  /** The home stack's multi-tenant app. */
  readonly clientId: pulumi.Input<string>;
  readonly permissions: readonly PermissionName[];
  readonly delegatedPermissions: readonly PermissionName[];
  /** The home app's Microsoft Graph application permissions (service health, audit search): consented on the tenant's Graph service principal. */
  readonly graphPermissions: readonly GraphPermission[];
  /** Signed in to the customer tenant. */
  readonly provider: azuread.Provider;
}

/**
 * A customer tenant's side of the multi-tenant app: its service principal there and the admin consent a Global
 * Administrator of that tenant would give, one app role assignment per application permission on the tenant's own
 * Office 365 Management APIs service principal, and the delegated grant when the app requests scopes.
 */
export class CustomerConsent extends pulumi.ComponentResource {
  readonly servicePrincipal: azuread.ServicePrincipal;
  readonly roleAssignments: azuread.AppRoleAssignment[];
  readonly graphRoleAssignments: azuread.AppRoleAssignment[];
  readonly delegatedGrant: azuread.ServicePrincipalDelegatedPermissionGrant | undefined;

  constructor(name: string, args: CustomerConsentArgs, options: pulumi.ComponentResourceOptions = {}) {
    super('o365-connector:index:CustomerConsent', name, {}, options);
    const child = { parent: this, provider: args.provider };
    const resource = managementApiPermissions(args.permissions, args.delegatedPermissions, { parent: this, provider: args.provider });

    this.servicePrincipal = new azuread.ServicePrincipal(name, {
      clientId: args.clientId,
      appRoleAssignmentRequired: false,
      // A customer admin may already have opened the consent URL, which creates the service principal: adopt it.
      useExisting: true,
      // No owners: the identity signing in (a partner admin through GDAP, say) need not be a user of this tenant.
    }, child);
    const grants = grantAdminConsent(name, { ...args, servicePrincipalObjectId: this.servicePrincipal.objectId, resource }, child);
    this.roleAssignments = grants.roleAssignments;
    this.delegatedGrant = grants.delegatedGrant;
    this.graphRoleAssignments = args.graphPermissions.length === 0 ? []
      : grantGraphConsent(name, args.graphPermissions, this.servicePrincipal.objectId, graphPermissions(args.graphPermissions, { parent: this, provider: args.provider }), child);
    this.registerOutputs({ servicePrincipalObjectId: this.servicePrincipal.objectId });
  }
}
