import * as pulumi from '@pulumi/pulumi';
import * as azuread from '@pulumi/azuread';
import { managementApiAppId } from '../connector/config/clouds.ts';
import type { PermissionName } from './config.ts';

export interface ManagementApiAppArgs {
  readonly displayName: string;
  /** Application permissions (Role), each consented with an app role assignment. */
  readonly permissions: readonly PermissionName[];
  /** Delegated permissions (Scope), consented together with one tenant-wide delegated grant. */
  readonly delegatedPermissions: readonly PermissionName[];
  /** Object id of the identity running `pulumi up`, made owner so it can keep managing the app with least privilege. */
  readonly ownerObjectId: pulumi.Input<string>;
  readonly provider: azuread.Provider;
}

/** The ids of `values` in a service principal's published roles or scopes; fails naming the first one missing. */
export function permissionIds(ids: Readonly<Record<string, string>>, values: readonly string[], kind: 'application permission' | 'delegated permission'): string[] {
  return values.map((value) => {
    const id = ids[value];
    if (!id) {
      throw new Error(`the Office 365 Management APIs service principal (${managementApiAppId}) publishes no ${kind} "${value}" in this tenant; check the cloud and that the Office 365 service principal exists`);
    }
    return id;
  });
}

/**
 * The app registration with least-privilege access to the Office 365 Management APIs, its service principal,
 * and the admin consent the portal's "Grant admin consent" button would give: one app role assignment per
 * application permission and one delegated permission grant carrying the delegated scopes.
 */
export class ManagementApiApp extends pulumi.ComponentResource {
  readonly application: azuread.Application;
  readonly servicePrincipal: azuread.ServicePrincipal;
  readonly roleAssignments: azuread.AppRoleAssignment[];
  readonly delegatedGrant: azuread.ServicePrincipalDelegatedPermissionGrant | undefined;
  readonly clientId: pulumi.Output<string>;

  constructor(name: string, args: ManagementApiAppArgs, options: pulumi.ComponentResourceOptions = {}) {
    super('o365-connector:index:ManagementApiApp', name, {}, options);
    const provider = args.provider;
    const child = { parent: this, provider };

    // Permission ids are looked up by value from the resource's service principal in this tenant, never hard-coded.
    const resource = azuread.getServicePrincipalOutput({ clientId: managementApiAppId }, { parent: this, provider });
    const roleIds = resource.appRoleIds.apply((ids) => permissionIds(ids, args.permissions, 'application permission'));
    const scopeIds = resource.oauth2PermissionScopeIds.apply((ids) => permissionIds(ids, args.delegatedPermissions, 'delegated permission'));

    this.application = new azuread.Application(name, {
      displayName: args.displayName,
      signInAudience: 'AzureADMyOrg',
      owners: [args.ownerObjectId],
      requiredResourceAccesses: [{
        resourceAppId: managementApiAppId,
        resourceAccesses: pulumi.all([roleIds, scopeIds]).apply(([roles, scopes]) => [
          ...roles.map((id) => ({ id, type: 'Role' })),
          ...scopes.map((id) => ({ id, type: 'Scope' })),
        ]),
      }],
    }, child);

    this.servicePrincipal = new azuread.ServicePrincipal(name, {
      clientId: this.application.clientId,
      appRoleAssignmentRequired: false,
      owners: [args.ownerObjectId],
    }, child);

    this.roleAssignments = args.permissions.map((permission, index) => new azuread.AppRoleAssignment(`${name}-${permission}`, {
      appRoleId: roleIds.apply((ids) => ids[index]!),
      principalObjectId: this.servicePrincipal.objectId,
      resourceObjectId: resource.objectId,
    }, child));

    // Graph rejects a grant without scopes, so no delegated permissions means no grant at all.
    this.delegatedGrant = args.delegatedPermissions.length === 0 ? undefined : new azuread.ServicePrincipalDelegatedPermissionGrant(`${name}-delegated`, {
      servicePrincipalObjectId: this.servicePrincipal.objectId,
      resourceServicePrincipalObjectId: resource.objectId,
      claimValues: [...args.delegatedPermissions],
    }, child);

    this.clientId = this.application.clientId;
    this.registerOutputs({ clientId: this.clientId, servicePrincipalObjectId: this.servicePrincipal.objectId });
  }
}
