import * as pulumi from '@pulumi/pulumi';
import * as azuread from '@pulumi/azuread';
import { managementApiAppId, microsoftGraphAppId } from '../contract/clouds.ts';
import type { PermissionName } from './config.ts';
import { grantAdminConsent, grantGraphConsent, graphPermissions, managementApiPermissions } from './admin-consent.ts';
import type { GraphPermission } from './graph-permissions.ts';

export { permissionIds } from './admin-consent.ts';

export interface ManagementApiAppArgs {
  readonly displayName: string;
  /** Application permissions (Role), each consented with an app role assignment. */
  readonly permissions: readonly PermissionName[];
  /** Delegated permissions (Scope), consented together with one tenant-wide delegated grant. */
  readonly delegatedPermissions: readonly PermissionName[];
  /** Microsoft Graph application permissions (service health, audit search), each consented with an app role assignment; none: nothing of Graph. */
  readonly graphPermissions: readonly GraphPermission[];
  /** Object id of the identity running `pulumi up`, made owner so it can keep managing the app with least privilege. */
  readonly ownerObjectId: pulumi.Input<string>;
  /**
   * `single`: a single-tenant app with its service principal and admin consent in its own tenant. `multiTenant`: the
   * app only (AzureADMultipleOrgs); each customer tenant gets its service principal and consent from a customer stack.
   */
  readonly audience: 'single' | 'multiTenant';
  readonly provider: azuread.Provider;
}

/**
 * The app registration with least-privilege access to the Office 365 Management APIs and, for a single-tenant app,
 * its service principal and the admin consent the portal's "Grant admin consent" button would give.
 */
export class ManagementApiApp extends pulumi.ComponentResource {
  readonly application: azuread.Application;
  readonly servicePrincipal: azuread.ServicePrincipal | undefined;
  readonly roleAssignments: azuread.AppRoleAssignment[] = [];
  /** Admin consent to the Graph application permissions (single-tenant app). */
  readonly graphRoleAssignments: azuread.AppRoleAssignment[] = [];
  readonly delegatedGrant: azuread.ServicePrincipalDelegatedPermissionGrant | undefined;
  readonly clientId: pulumi.Output<string>;

  constructor(name: string, args: ManagementApiAppArgs, options: pulumi.ComponentResourceOptions = {}) {
    super('o365-connector:index:ManagementApiApp', name, {}, options);
    const provider = args.provider;
    const child = { parent: this, provider };

    // Permission ids are looked up by value from the resource's service principal in this tenant, never hard-coded.
    const resource = managementApiPermissions(args.permissions, args.delegatedPermissions, { parent: this, provider });
    const graph = args.graphPermissions.length > 0 ? graphPermissions(args.graphPermissions, { parent: this, provider }) : undefined;

    this.application = new azuread.Application(name, {
      displayName: args.displayName,
      signInAudience: args.audience === 'single' ? 'AzureADMyOrg' : 'AzureADMultipleOrgs',
      owners: [args.ownerObjectId],
      requiredResourceAccesses: [{
        resourceAppId: managementApiAppId,
        resourceAccesses: pulumi.all([resource.roleIds, resource.scopeIds]).apply(([roles, scopes]) => [
          ...roles.map((id) => ({ id, type: 'Role' })),
          ...scopes.map((id) => ({ id, type: 'Scope' })),
        ]),
      }, ...(graph ? [{
        resourceAppId: microsoftGraphAppId,
        resourceAccesses: graph.roleIds.apply((roles) => roles.map((id) => ({ id, type: 'Role' }))),
      }] : [])],
    }, child);
    this.clientId = this.application.clientId;

    if (args.audience === 'single') {
      this.servicePrincipal = new azuread.ServicePrincipal(name, {
        clientId: this.application.clientId,
        appRoleAssignmentRequired: false,
        owners: [args.ownerObjectId],
      }, child);
      const grants = grantAdminConsent(name, { ...args, servicePrincipalObjectId: this.servicePrincipal.objectId, resource }, child);
      this.roleAssignments = grants.roleAssignments;
      this.delegatedGrant = grants.delegatedGrant;
      if (graph) this.graphRoleAssignments = grantGraphConsent(name, args.graphPermissions, this.servicePrincipal.objectId, graph, child);
    }

    this.registerOutputs({ clientId: this.clientId, servicePrincipalObjectId: this.servicePrincipal?.objectId });
  }
}
