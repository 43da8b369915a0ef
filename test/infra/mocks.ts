// Faithful stand-ins for what azuread and azure-native return, for pulumi.runtime.setMocks. Property names follow the
// providers' schemas (e.g. ApplicationPassword outputs keyId, value, startDate, endDate).
import * as pulumi from '@pulumi/pulumi';
import { managementApiAppId, microsoftGraphAppId } from '../../contract/clouds.ts';

export const tenantId = '2f0c3a11-6c55-4d8a-9a1e-0d7d2c1b4e77';
export const deployerObjectId = '9c0d2b1e-3f4a-4b5c-8d6e-7f8091a2b3c4';
export const subscriptionGuid = '0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9';
export const appClientId = '3f9a6c2e-8d41-4b7a-9e05-6c1d2b3a4f58';
export const resourceServicePrincipalObjectId = 'a7b3d9e5-1f2c-4e6a-8b9d-0c1e2f3a4b5c';

/** A customer tenant, as a customer stack signed in to it sees it. */
export const customerTenant = { tenantId: '7d1e4c2a-5b6f-4a8e-9c0d-1e2f3a4b5c6d', initialDomain: 'fabrikam.onmicrosoft.com' } as const;
export const homeStackName = 'acme/o365-connector/home';
/** What the home stack exports, as `pulumi stack output --json --show-secrets` would show it. */
export const homeOutputs = {
  mode: 'home',
  connectorName: 'Acme MSSP audit collector',
  clientId: appClientId,
  clientSecret: 'home-secret-generation-3',
  clientSecretExpiry: '2027-05-24T00:00:00Z',
  cloud: 'commercial',
  homeTenantId: tenantId,
  permissions: ['ActivityFeed.Read', 'ActivityFeed.ReadDlp', 'ServiceHealth.Read'],
  delegatedPermissions: ['ActivityFeed.Read', 'ActivityFeed.ReadDlp', 'ServiceHealth.Read'],
  adminConsentUrl: `https://login.microsoftonline.com/organizations/adminconsent?client_id=${appClientId}`,
} as const;

/** The Office 365 Management APIs service principal as a tenant reports it: more roles than we may request. */
export const appRoleIds: Record<string, string> = {
  'ActivityFeed.Read': '594c1fb6-4f81-4475-ae41-0c394909246c',
  'ActivityFeed.ReadDlp': '4807a72c-ad38-4250-94c9-4eabfe26cd55',
  'ServiceHealth.Read': 'e2cea78f-e743-4d8f-a16a-75b629a038ae',
  'ActivityReports.Read': 'b3a8c2bd-1e1d-4a48-8f3a-3a8d2b6b4d10',
  'ThreatIntelligence.Read': 'e2cf5a4a-4c2d-4f3e-9a0e-3f1c6c2b1a99',
};
/** The Microsoft Graph service principal's application permissions, as a tenant reports them (a few of its hundreds). */
export const graphAppRoleIds: Record<string, string> = {
  'ServiceHealth.Read.All': '79c261e0-fe76-4144-aad5-bdc68fbe4037',
  'ServiceMessage.Read.All': '1b620472-6534-4fe6-9df2-4680e8aa28ec',
  'AuditLogsQuery.Read.All': '5e1e9171-754d-478c-812c-f1755a9a4c2d',
  'AuditLog.Read.All': 'b0afded3-3588-46d8-8b3d-9842eff778da',
  'Directory.Read.All': '7ab1d382-f21e-4acd-a863-ba3e13f7da61',
};
export const graphServicePrincipalObjectId = 'c3d4e5f6-0718-4293-a4b5-c6d7e8f90a1b';

export const oauth2PermissionScopeIds: Record<string, string> = {
  'ActivityFeed.Read': '570282fd-fa5c-430d-a7fd-fc8dc98a9dca',
  'ActivityFeed.ReadDlp': '0f3b7f6d-2d7c-4c1f-a3b5-1a6e9c2b8d44',
  'ServiceHealth.Read': '17f1c501-83cd-414c-9064-cd10f7aef836',
  'ActivityReports.Read': '825c9d21-ba03-4e97-8007-83f020ff8c0f',
  'ThreatIntelligence.Read': '1e5c4c2a-9b7d-4e3f-8a6b-2c1d0e9f8a7b',
};

/** The Log Analytics workspace Sentinel uses, in a subscription other than the provider's default. */
export const sentinelSubscriptionId = '5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d';
export const sentinelWorkspaceLocation = 'westeurope';
export const sentinelWorkspaceId = `/subscriptions/${sentinelSubscriptionId}/resourceGroups/rg-sentinel/providers/Microsoft.OperationalInsights/workspaces/soc-sentinel`;
export const sentinelRuleImmutableId = 'dcr-8ba104057eaa4ceb90bcae74d6af1a18';

export interface RecordedResource {
  readonly type: string;
  readonly name: string;
  readonly inputs: Record<string, any>;
  readonly provider: string | undefined;
}

export interface RecordedCall {
  readonly token: string;
  readonly inputs: Record<string, any>;
}

const passwordType = 'azuread:index/applicationPassword:ApplicationPassword';

export interface PublishedPermissions {
  readonly appRoleIds: Record<string, string>;
  readonly oauth2PermissionScopeIds: Record<string, string>;
}

export interface MockWorld {
  /** Replaces the ids the Office 365 Management APIs service principal reports. */
  readonly published?: PublishedPermissions;
  /** Replaces the application permission ids the Microsoft Graph service principal reports. */
  readonly graphPublished?: Record<string, string>;
  /** The tenant the azuread provider is signed in to (default: the home/single tenant, contoso). */
  readonly tenant?: { readonly tenantId: string; readonly initialDomain: string };
  /** Stacks a StackReference can read, by fully qualified name (default: the home stack with homeOutputs). */
  readonly stacks?: Readonly<Record<string, Record<string, unknown>>>;
  /** Whether the app (appClientId) has a service principal in the signed-in tenant. */
  readonly appServicePrincipal?: boolean;
  /** Service principals found by object id (managed identities, or an app's): their client id and alternative names. */
  readonly principals?: Readonly<Record<string, { readonly clientId: string; readonly displayName: string; readonly alternativeNames: readonly string[] }>>;
}

export function installMocks(world: MockWorld = {}): { resources: RecordedResource[]; calls: RecordedCall[] } {
  const published = world.published ?? { appRoleIds, oauth2PermissionScopeIds };
  const tenant = world.tenant ?? { tenantId, initialDomain: 'contoso.onmicrosoft.com' };
  const stacks = world.stacks ?? { [homeStackName]: { ...homeOutputs } };
  const resources: RecordedResource[] = [];
  const calls: RecordedCall[] = [];
  pulumi.runtime.setMocks({
    newResource(args) {
      resources.push({ type: args.type, name: args.name, inputs: args.inputs, provider: args.provider });
      const state: Record<string, unknown> = { ...args.inputs };
      switch (args.type) {
        case 'azuread:index/application:Application':
          state['clientId'] = appClientId;
          state['objectId'] = `object-of-${args.name}`;
          return { id: `/applications/object-of-${args.name}`, state };
        case 'azuread:index/servicePrincipal:ServicePrincipal':
          state['objectId'] = `sp-object-of-${args.name}`;
          return { id: `/servicePrincipals/sp-object-of-${args.name}`, state };
        case passwordType:
          // Each resource gets its own key and value, as Graph's addPassword does.
          state['keyId'] = `key-of-${args.name}`;
          state['value'] = `value-of-${args.name}`;
          state['startDate'] = '2026-11-25T00:00:00Z';
          return { id: `${args.inputs.applicationId}/password/key-of-${args.name}`, state };
        case 'azuread:index/applicationCertificate:ApplicationCertificate':
          state['keyId'] = `key-of-${args.name}`;
          return { id: `${args.inputs.applicationId}/certificate/key-of-${args.name}`, state };
        case 'azure-native:keyvault:Vault':
          state['name'] = args.inputs.vaultName ?? `${args.name}1a2b3c4d`;
          state['properties'] = { ...args.inputs.properties, vaultUri: `https://${state['name']}.vault.azure.net/` };
          return { id: `/subscriptions/${subscriptionGuid}/resourceGroups/${args.inputs.resourceGroupName}/providers/Microsoft.KeyVault/vaults/${state['name']}`, state };
        case 'pulumi:pulumi:StackReference': {
          // Read, not registered: the engine fetches the named stack's outputs; secret ones are listed by name.
          const outputs = stacks[args.inputs.name];
          if (!outputs) throw new Error(`unknown stack ${args.inputs.name}`);
          return { id: args.inputs.name, state: { name: args.inputs.name, outputs, secretOutputNames: 'clientSecret' in outputs ? ['clientSecret'] : [] } };
        }
        case 'azure-native:monitor:DataCollectionEndpoint': {
          const id = `/subscriptions/${sentinelSubscriptionId}/resourceGroups/${args.inputs.resourceGroupName}/providers/Microsoft.Insights/dataCollectionEndpoints/${args.name}`;
          state['logsIngestion'] = { endpoint: `https://${args.name}-a1b2.${args.inputs.location}-1.ingest.monitor.azure.com` };
          return { id, state };
        }
        case 'azure-native:monitor:DataCollectionRule': {
          state['immutableId'] = sentinelRuleImmutableId;
          return { id: `/subscriptions/${sentinelSubscriptionId}/resourceGroups/${args.inputs.resourceGroupName}/providers/Microsoft.Insights/dataCollectionRules/${args.name}`, state };
        }
        case 'azure-native:subscription:Alias':
          state['properties'] = { subscriptionId: '11111111-2222-3333-4444-555555555555', provisioningState: 'Succeeded' };
          return { id: `/providers/Microsoft.Subscription/aliases/${args.inputs.aliasName}`, state };
        default:
          return { id: `${args.name}-id`, state };
      }
    },
    call(args) {
      calls.push({ token: args.token, inputs: args.inputs });
      switch (args.token) {
        case 'azuread:index/getClientConfig:getClientConfig':
          return { id: 'clientConfigs/' + tenant.tenantId, tenantId: tenant.tenantId, clientId: '04b07795-8ddb-461a-bbee-02f9e1bf7b46', objectId: deployerObjectId };
        case 'azuread:index/getDomains:getDomains':
          return {
            id: 'domains',
            domains: [
              { domainName: tenant.initialDomain.replace('.onmicrosoft.com', '.com'), initial: false, default: true, verified: true, adminManaged: true, root: true, authenticationType: 'Managed', supportedServices: ['Email'] },
              { domainName: tenant.initialDomain, initial: true, default: false, verified: true, adminManaged: true, root: true, authenticationType: 'Managed', supportedServices: ['Email', 'OfficeCommunicationsOnline'] },
            ].filter((domain) => !args.inputs.onlyInitial || domain.initial),
          };
        case 'azuread:index/getServicePrincipal:getServicePrincipal':
          if (args.inputs.objectId !== undefined) {
            const principal = world.principals?.[args.inputs.objectId];
            if (!principal) throw new Error(`service principal ${args.inputs.objectId} not found`);
            return { id: args.inputs.objectId, objectId: args.inputs.objectId, ...principal, alternativeNames: [...principal.alternativeNames], appRoleIds: {}, oauth2PermissionScopeIds: {} };
          }
          if (args.inputs.clientId === microsoftGraphAppId) {
            return {
              id: graphServicePrincipalObjectId, objectId: graphServicePrincipalObjectId, clientId: microsoftGraphAppId,
              displayName: 'Microsoft Graph', appRoleIds: world.graphPublished ?? graphAppRoleIds, oauth2PermissionScopeIds: {},
            };
          }
          if (args.inputs.clientId !== managementApiAppId) throw new Error(`unexpected service principal lookup ${JSON.stringify(args.inputs)}`);
          return {
            id: resourceServicePrincipalObjectId, objectId: resourceServicePrincipalObjectId, clientId: managementApiAppId,
            displayName: 'Office 365 Management APIs', appRoleIds: published.appRoleIds, oauth2PermissionScopeIds: published.oauth2PermissionScopeIds,
          };
        case 'azuread:index/getServicePrincipals:getServicePrincipals': {
          const found = (args.inputs.clientIds as string[]).filter((id) => id === appClientId && world.appServicePrincipal);
          if (found.length < args.inputs.clientIds.length && !args.inputs.ignoreMissing) throw new Error('No service principals found matching specified filter');
          return { id: 'servicePrincipals', clientIds: found, objectIds: found.map(() => 'sp-object-of-consented-app'), displayNames: found.map(() => homeOutputs.connectorName), servicePrincipals: [] };
        }
        case 'azure-native:operationalinsights:getWorkspace':
          return { id: `/subscriptions/${sentinelSubscriptionId}/resourceGroups/${args.inputs.resourceGroupName}/providers/Microsoft.OperationalInsights/workspaces/${args.inputs.workspaceName}`, name: args.inputs.workspaceName, location: sentinelWorkspaceLocation, customerId: '5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9' };
        default:
          throw new Error(`unmocked invoke ${args.token}`);
      }
    },
  }, 'o365-connector', 'test', false);
  return { resources, calls };
}

export function valueOf<T>(output: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => output.apply((value) => { resolve(value); return value; }));
}

/** The engine's marker for a secret value in resource inputs (pulumi's rpc `specialSigKey` / secret signature). */
const secretSignatureKey = '4dabf18193072939515e22adb298388d';
const secretSignature = '1b47061264138c4ac30d75fd1eb44270';

/** Returns the value inside a secret input, and fails when the input was not marked secret. */
export function unwrapSecret(input: unknown): any {
  if (typeof input !== 'object' || input === null || (input as Record<string, unknown>)[secretSignatureKey] !== secretSignature) {
    throw new Error(`expected a secret input, got ${JSON.stringify(input)}`);
  }
  return (input as { value: unknown }).value;
}
