import * as pulumi from '@pulumi/pulumi';
import * as azuread from '@pulumi/azuread';
import { managementApiAppId } from '../connector/config/clouds.ts';
import type { PermissionName } from './config.ts';

export interface ManagementApiAppArgs {
  readonly displayName: string;
  readonly permissions: readonly PermissionName[];
  readonly provider: azuread.Provider;
}

function idOf(ids: Readonly<Record<string, string>>, value: string, kind: string): string {
  const id = ids[value];
  if (!id) {
    throw new Error(`the Office 365 Management APIs service principal (${managementApiAppId}) publishes no ${kind} "${value}" in this tenant`);
  }
  return id;
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
  readonly delegatedGrant: azuread.ServicePrincipalDelegatedPermissionGrant;
  readonly clientId: pulumi.Output<string>;

  constructor(name: string, args: ManagementApiAppArgs, options: pulumi.ComponentResourceOptions = {}) {
    super('o365-connector:index:ManagementApiApp', name, {}, options);
    const provider = args.provider;
    const child = { parent: this, provider };

    // Permission ids are looked up by value from the resource's service principal, never hard-coded.
    const resource = azuread.getServicePrincipalOutput({ clientId: managementApiAppId }, { parent: this, provider });
    const roleIds = resource.appRoleIds.apply((ids) => args.permissions.map((value) => idOf(ids, value, 'application permission')));
    const scopeIds = resource.oauth2PermissionScopeIds.apply((ids) => args.permissions.map((value) => idOf(ids, value, 'delegated permission')));

    this.application = new azuread.Application(name, {
      displayName: args.displayName,
      signInAudience: 'AzureADMyOrg',
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
    }, child);

    this.roleAssignments = args.permissions.map((permission, index) => new azuread.AppRoleAssignment(`${name}-${permission}`, {
      appRoleId: roleIds.apply((ids) => ids[index]!),
      principalObjectId: this.servicePrincipal.objectId,
      resourceObjectId: resource.objectId,
    }, child));

    this.delegatedGrant = new azuread.ServicePrincipalDelegatedPermissionGrant(`${name}-delegated`, {
      servicePrincipalObjectId: this.servicePrincipal.objectId,
      resourceServicePrincipalObjectId: resource.objectId,
      claimValues: [...args.permissions],
    }, child);

    this.clientId = this.application.clientId;
    this.registerOutputs({ clientId: this.clientId, servicePrincipalObjectId: this.servicePrincipal.objectId });
  }
}
