// The Microsoft Graph application permissions this program may request, and the stack setting that asks for each.
import { graphAuditSearchPermission, graphServiceHealthPermissions } from '../contract/clouds.ts';
import type { InfraConfig } from './config.ts';

/** In the order an app requests them: service health's two, then the audit search's. */
export const graphPermissionNames = [...graphServiceHealthPermissions, graphAuditSearchPermission] as const;
export type GraphPermission = (typeof graphPermissionNames)[number];

type GraphSetting = keyof Pick<InfraConfig, 'serviceHealth' | 'auditSearch'>;

/** The setting that requests each permission: the one to turn off where a tenant's Graph does not publish it. */
export const graphPermissionSetting: Readonly<Record<GraphPermission, GraphSetting>> = {
  'ServiceHealth.Read.All': 'serviceHealth',
  'ServiceMessage.Read.All': 'serviceHealth',
  [graphAuditSearchPermission]: 'auditSearch',
};

/** The Graph application permissions a single or home stack requests: those of the settings that are on. */
export function graphPermissionsOf(config: Pick<InfraConfig, GraphSetting>): GraphPermission[] {
  return graphPermissionNames.filter((permission) => config[graphPermissionSetting[permission]]);
}

/** Whether these (requested and consented) Graph permissions read the audit search: the outputs' `auditSearch`. */
export function readsAuditSearch(permissions: readonly GraphPermission[]): boolean {
  return permissions.includes(graphAuditSearchPermission);
}
