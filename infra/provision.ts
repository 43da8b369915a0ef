import * as pulumi from '@pulumi/pulumi';
import * as azuread from '@pulumi/azuread';
import { Provider as AzureNativeProvider } from '@pulumi/azure-native/provider.js';
import { clouds, type CloudName } from '../connector/config/clouds.ts';
import { contentTypes, type ContentType } from '../connector/api/content-types.ts';
import type { InfraConfig, PermissionName } from './config.ts';
import { ClientCredentials } from './client-credentials.ts';
import { ConnectorKeyVault } from './key-vault.ts';
import { ManagementApiApp } from './management-api-app.ts';
import { LoggingSubscription } from './subscription-alias.ts';
import { discoverTenant } from './tenant.ts';

const azureadEnvironment: Record<CloudName, string> = {
  commercial: 'global', gcc: 'global', gcchigh: 'usgovernmentl4', dod: 'usgovernmentl5', china: 'china',
};
const armEnvironment: Record<CloudName, string> = {
  commercial: 'public', gcc: 'public', gcchigh: 'usgovernment', dod: 'usgovernment', china: 'china',
};

/** Content types the granted permissions can read: DLP.All needs ActivityFeed.ReadDlp. */
export function readableContentTypes(permissions: readonly PermissionName[]): ContentType[] {
  if (!permissions.includes('ActivityFeed.Read')) return [];
  return contentTypes.filter((type) => type !== 'DLP.All' || permissions.includes('ActivityFeed.ReadDlp'));
}

/** The stack outputs: exactly the connector's configuration (`pulumi stack output --json --show-secrets`). */
export interface ConnectorOutputs {
  connectorName: pulumi.Output<string>;
  tenantId: pulumi.Output<string>;
  tenantDomain: pulumi.Output<string>;
  clientId: pulumi.Output<string>;
  clientSecret: pulumi.Output<string> | undefined;
  clientSecretExpiry: pulumi.Output<string> | undefined;
  certificateKeyId: pulumi.Output<string> | undefined;
  publisherId: pulumi.Output<string>;
  cloud: pulumi.Output<string>;
  authorityHost: pulumi.Output<string>;
  apiRoot: pulumi.Output<string>;
  contentTypes: pulumi.Output<string[]>;
  keyVaultUri: pulumi.Output<string> | undefined;
  keyVaultSecretName: pulumi.Output<string> | undefined;
  subscriptionId: pulumi.Output<string> | undefined;
}

export function provision(config: InfraConfig, options: { now?: Date } = {}): ConnectorOutputs {
  const endpoints = clouds[config.cloud];
  const azure = new azuread.Provider('azuread', { environment: azureadEnvironment[config.cloud] });
  const tenant = discoverTenant(azure);

  const app = new ManagementApiApp('o365-connector', { displayName: config.displayName, permissions: config.permissions, provider: azure });
  const credentials = new ClientCredentials('o365-connector', {
    applicationId: app.application.id,
    credential: config.credential,
    secretLifetimeDays: config.secretLifetimeDays,
    secretRotation: config.secretRotation,
    certificatePem: config.certificatePem,
    provider: azure,
    ...(options.now ? { now: options.now } : {}),
  });

  const needsArm = config.keyVault !== undefined || config.subscriptionAlias !== undefined;
  const arm = needsArm ? new AzureNativeProvider('azure-native', { environment: armEnvironment[config.cloud] }) : undefined;

  let vault: ConnectorKeyVault | undefined;
  if (config.keyVault && arm) {
    if (!credentials.clientSecret) throw new Error('o365-connector:keyVault holds the client secret, so it needs credential secret or both');
    vault = new ConnectorKeyVault('o365-connector', {
      ...config.keyVault,
      tenantId: tenant.tenantId,
      clientSecret: credentials.clientSecret,
      secretName: 'o365-connector-client-secret',
      provider: arm,
    });
  }
  const alias = config.subscriptionAlias && arm ? new LoggingSubscription('o365-connector-logging', { ...config.subscriptionAlias, provider: arm }) : undefined;

  return {
    connectorName: pulumi.output(config.displayName),
    tenantId: tenant.tenantId,
    tenantDomain: tenant.tenantDomain,
    clientId: app.clientId,
    clientSecret: credentials.clientSecret,
    clientSecretExpiry: credentials.clientSecretExpiry,
    certificateKeyId: credentials.certificate?.keyId,
    publisherId: config.publisherId ? pulumi.output(config.publisherId) : tenant.tenantId,
    cloud: pulumi.output(config.cloud),
    authorityHost: pulumi.output(endpoints.authorityHost),
    apiRoot: pulumi.output(endpoints.apiRoot),
    contentTypes: pulumi.output(readableContentTypes(config.permissions)),
    keyVaultUri: vault?.vaultUri,
    keyVaultSecretName: vault ? pulumi.output(vault.secretName) : undefined,
    subscriptionId: alias?.subscriptionId,
  };
}
