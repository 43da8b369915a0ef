// Composes the components; index.ts calls this with the stack's config, tests call it under pulumi's mocks.
import * as pulumi from '@pulumi/pulumi';
import { clouds } from '../connector/config/clouds.ts';
import { contentTypes, type ContentType } from '../connector/api/content-types.ts';
import type { ProgramOutputs } from '../connector/config/stack-outputs.ts';
import type { InfraConfig, PermissionName } from './config.ts';
import { ClientCredentials } from './client-credentials.ts';
import { ConnectorKeyVault } from './key-vault.ts';
import { ManagementApiApp } from './management-api-app.ts';
import { azureadProvider, azureNativeProvider } from './providers.ts';
import { LoggingSubscription } from './subscription-alias.ts';
import { discoverTenant } from './tenant.ts';

/** Content types the granted application permissions can read: DLP.All needs ActivityFeed.ReadDlp. */
export function readableContentTypes(permissions: readonly PermissionName[]): ContentType[] {
  if (!permissions.includes('ActivityFeed.Read')) return [];
  return contentTypes.filter((type) => type !== 'DLP.All' || permissions.includes('ActivityFeed.ReadDlp'));
}

/**
 * The stack outputs: the connector's configuration, read from `pulumi stack output --json --show-secrets`, typed by
 * the stack-outputs contract the connector validates them with (connector/config/stack-outputs.ts). Optional ones
 * (clientSecret, certificateKeyId, keyVault*, subscriptionId) are left out, not set to undefined, when their feature
 * is off, so they are simply absent.
 */
export type ConnectorOutputs = { [K in keyof ProgramOutputs]: pulumi.Output<NonNullable<ProgramOutputs[K]>> };

export interface ProvisionOptions {
  /** When a newly created secret starts its lifetime; tests pin it. */
  readonly now?: Date;
}

export function provision(config: InfraConfig, options: ProvisionOptions = {}): ConnectorOutputs {
  const endpoints = clouds[config.cloud];
  const azure = azureadProvider(config.cloud, config.azureadSettings);
  const tenant = discoverTenant(azure);

  const app = new ManagementApiApp('o365-connector', {
    displayName: config.displayName,
    permissions: config.permissions,
    delegatedPermissions: config.delegatedPermissions,
    ownerObjectId: tenant.deployerObjectId,
    provider: azure,
  });
  const credentials = new ClientCredentials('o365-connector', {
    applicationId: app.application.id,
    credential: config.credential,
    secretLifetimeDays: config.secretLifetimeDays,
    secretRotation: config.secretRotation,
    certificatePem: config.certificatePem,
    provider: azure,
    ...(options.now ? { now: options.now } : {}),
  });

  const arm = config.keyVault || config.subscriptionAlias ? azureNativeProvider(config.cloud, config.azureNativeSettings) : undefined;
  // readConfig guarantees a secret credential whenever the vault is on.
  const vault = config.keyVault && arm && credentials.clientSecret && credentials.clientSecretExpiry
    ? new ConnectorKeyVault('o365-connector', {
      ...config.keyVault,
      tenantId: tenant.tenantId,
      clientSecret: credentials.clientSecret,
      clientSecretExpiry: credentials.clientSecretExpiry,
      provider: arm,
    })
    : undefined;
  const alias = config.subscriptionAlias && arm ? new LoggingSubscription('o365-connector-logging', { ...config.subscriptionAlias, provider: arm }) : undefined;

  return {
    connectorName: pulumi.output(config.displayName),
    tenantId: tenant.tenantId,
    tenantDomain: tenant.tenantDomain,
    clientId: app.clientId,
    ...(credentials.clientSecret ? { clientSecret: credentials.clientSecret } : {}),
    ...(credentials.clientSecretExpiry ? { clientSecretExpiry: credentials.clientSecretExpiry } : {}),
    ...(credentials.certificate ? { certificateKeyId: credentials.certificate.keyId } : {}),
    publisherId: config.publisherId ? pulumi.output(config.publisherId) : tenant.tenantId,
    cloud: pulumi.output(config.cloud),
    authorityHost: pulumi.output(endpoints.authorityHost),
    apiRoot: pulumi.output(endpoints.apiRoot),
    contentTypes: pulumi.output(readableContentTypes(config.permissions)),
    ...(vault ? { keyVaultUri: vault.vaultUri, keyVaultSecretName: pulumi.output(vault.secretName) } : {}),
    ...(alias ? { subscriptionId: alias.subscriptionId } : {}),
  };
}
