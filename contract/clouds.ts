// The one table of Microsoft cloud endpoints, shared by the Pulumi program and the connector.
export const cloudNames = ['commercial', 'gcc', 'gcchigh', 'dod', 'china'] as const;
export type CloudName = (typeof cloudNames)[number];

export interface CloudEndpoints {
  /** Root of the Office 365 Management Activity API; also the token audience (`${apiRoot}/.default`). */
  readonly apiRoot: string;
  /** Microsoft identity platform host that issues tokens for this cloud. */
  readonly authorityHost: string;
  /** Microsoft Graph root: service health (the ServiceHealth unit); also its token audience (`${graphRoot}/.default`). */
  readonly graphRoot: string;
  /** Microsoft Graph's audit log query API (Purview audit search, history beyond the API's 7 days) exists here: the global service only. */
  readonly auditSearch: boolean;
  /** Azure Monitor's token audience (`${monitorAudience}/.default`): the Logs Ingestion API (the Sentinel sink). */
  readonly monitorAudience: string;
}

export const clouds: Readonly<Record<CloudName, CloudEndpoints>> = {
  commercial: {
    apiRoot: 'https://manage.office.com',
    authorityHost: 'https://login.microsoftonline.com',
    graphRoot: 'https://graph.microsoft.com',
    auditSearch: true,
    monitorAudience: 'https://monitor.azure.com',
  },
  gcc: {
    apiRoot: 'https://manage-gcc.office.com',
    authorityHost: 'https://login.microsoftonline.com',
    graphRoot: 'https://graph.microsoft.com',
    auditSearch: true,
    monitorAudience: 'https://monitor.azure.com',
  },
  gcchigh: {
    apiRoot: 'https://manage.office365.us',
    authorityHost: 'https://login.microsoftonline.us',
    graphRoot: 'https://graph.microsoft.us',
    auditSearch: false,
    monitorAudience: 'https://monitor.azure.us',
  },
  dod: {
    apiRoot: 'https://manage.protection.apps.mil',
    authorityHost: 'https://login.microsoftonline.us',
    graphRoot: 'https://dod-graph.microsoft.us',
    auditSearch: false,
    monitorAudience: 'https://monitor.azure.us',
  },
  // Unverified by Microsoft's current docs: also seen as manage.office.cn.
  china: {
    apiRoot: 'https://manage.office365.cn',
    authorityHost: 'https://login.partner.microsoftonline.cn',
    graphRoot: 'https://microsoftgraph.chinacloudapi.cn',
    auditSearch: false,
    monitorAudience: 'https://monitor.azure.cn',
  },
};

export function isCloudName(value: string): value is CloudName {
  return (cloudNames as readonly string[]).includes(value);
}

/** Microsoft Graph's first-party application (the same appId in every cloud): owns ServiceHealth.Read.All and ServiceMessage.Read.All. */
export const microsoftGraphAppId = '00000003-0000-0000-c000-000000000000';

/** The Graph application permissions that read service health (issues, overviews) and the message centre. */
export const graphServiceHealthPermissions = ['ServiceHealth.Read.All', 'ServiceMessage.Read.All'] as const;
export type GraphPermissionName = (typeof graphServiceHealthPermissions)[number];

/** The Graph application permission that reads the audit search (history beyond the Management Activity API's 7 days). */
export const graphAuditSearchPermission = 'AuditLogsQuery.Read.All';

/** The first-party "Office 365 Management APIs" application that owns ActivityFeed.* permissions. */
export const managementApiAppId = 'c5393580-f805-4401-95e8-94b7a6ef2fc2';
