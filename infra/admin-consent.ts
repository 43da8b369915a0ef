import * as pulumi from '@pulumi/pulumi';
import * as azuread from '@pulumi/azuread';
import { managementApiAppId, microsoftGraphAppId } from '../contract/clouds.ts';
import { configNamespace, type PermissionName } from './config.ts';
import { graphPermissionSetting, type GraphPermission } from './graph-permissions.ts';

/** The ids of `values` in a service principal's published roles or scopes; fails naming the first one missing. */
export function permissionIds(ids: Readonly<Record<string, string>>, values: readonly string[], kind: 'application permission' | 'delegated permission', resource: 'management' | 'graph' = 'management'): string[] {
  return values.map((value) => {
    const id = ids[value];
    if (!id) {
      throw new Error(resource === 'management'
        ? `the Office 365 Management APIs service principal (${managementApiAppId}) publishes no ${kind} "${value}" in this tenant; check the cloud and that the Office 365 service principal exists`
        : `the Microsoft Graph service principal (${microsoftGraphAppId}) publishes no ${kind} "${value}" in this tenant; check the cloud, or set ${configNamespace}:${graphPermissionSetting[value as GraphPermission]} false`);
    }
    return id;
  });
}

/** The tenant's Office 365 Management APIs service principal and the ids of the permissions asked for, looked up by value. */
export interface ManagementApiPermissions {
  readonly resourceObjectId: pulumi.Output<string>;
  readonly roleIds: pulumi.Output<string[]>;
  readonly scopeIds: pulumi.Output<string[]>;
}

export function managementApiPermissions(
  permissions: readonly PermissionName[], delegatedPermissions: readonly PermissionName[], options: pulumi.InvokeOutputOptions,
): ManagementApiPermissions {
  const resource = azuread.getServicePrincipalOutput({ clientId: managementApiAppId }, options);
  return {
    resourceObjectId: resource.objectId,
    roleIds: resource.appRoleIds.apply((ids) => permissionIds(ids, permissions, 'application permission')),
    scopeIds: resource.oauth2PermissionScopeIds.apply((ids) => permissionIds(ids, delegatedPermissions, 'delegated permission')),
  };
}

/** The tenant's Microsoft Graph service principal and the ids of the Graph application permissions asked for, looked up by value. */
export interface GraphPermissions {
  readonly resourceObjectId: pulumi.Output<string>;
  readonly roleIds: pulumi.Output<string[]>;
}

export function graphPermissions(permissions: readonly GraphPermission[], options: pulumi.InvokeOutputOptions): GraphPermissions {
  const resource = azuread.getServicePrincipalOutput({ clientId: microsoftGraphAppId }, options);
  return { resourceObjectId: resource.objectId, roleIds: resource.appRoleIds.apply((ids) => permissionIds(ids, permissions, 'application permission', 'graph')) };
}

/** What the portal's "Grant admin consent" gives for Graph application permissions: one app role assignment each. */
export function grantGraphConsent(name: string, permissions: readonly GraphPermission[], principalObjectId: pulumi.Input<string>, resource: GraphPermissions, options: pulumi.CustomResourceOptions): azuread.AppRoleAssignment[] {
  return permissions.map((permission, index) => new azuread.AppRoleAssignment(`${name}-graph-${permission}`, {
    appRoleId: resource.roleIds.apply((ids) => ids[index]!),
    principalObjectId,
    resourceObjectId: resource.resourceObjectId,
  }, options));
}

export interface AdminConsentArgs {
  readonly permissions: readonly PermissionName[];
  readonly delegatedPermissions: readonly PermissionName[];
  /** The app's service principal in the tenant that consents. */
  readonly servicePrincipalObjectId: pulumi.Input<string>;
  readonly resource: ManagementApiPermissions;
}

export interface AdminConsentGrants {
  readonly roleAssignments: azuread.AppRoleAssignment[];
  readonly delegatedGrant: azuread.ServicePrincipalDelegatedPermissionGrant | undefined;
}

/**
 * What the portal's "Grant admin consent" button gives, in one tenant: one app role assignment per application
 * permission and one delegated permission grant carrying the delegated scopes. Declared under the caller's
 * component (`options` carries parent and provider), so single stacks keep their resources' names.
 */
export function grantAdminConsent(name: string, args: AdminConsentArgs, options: pulumi.CustomResourceOptions): AdminConsentGrants {
  const roleAssignments = args.permissions.map((permission, index) => new azuread.AppRoleAssignment(`${name}-${permission}`, {
    appRoleId: args.resource.roleIds.apply((ids) => ids[index]!),
    principalObjectId: args.servicePrincipalObjectId,
    resourceObjectId: args.resource.resourceObjectId,
  }, options));
  // Graph rejects a grant without scopes, so no delegated permissions means no grant at all.
  const delegatedGrant = args.delegatedPermissions.length === 0 ? undefined : new azuread.ServicePrincipalDelegatedPermissionGrant(`${name}-delegated`, {
    servicePrincipalObjectId: args.servicePrincipalObjectId,
    resourceServicePrincipalObjectId: args.resource.resourceObjectId,
    claimValues: [...args.delegatedPermissions],
  }, options);
  return { roleAssignments, delegatedGrant };
}
