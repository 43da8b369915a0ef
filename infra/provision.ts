// Composes the components; index.ts calls this with the stack's config, tests call it under pulumi's mocks.
import * as pulumi from '@pulumi/pulumi';
import { clouds, graphServiceHealthPermissions } from '../contract/clouds.ts';
import { contentTypes, serviceHealth, type CollectedType } from '../contract/content-types.ts';
import type { ProgramOutputs } from '../contract/stack-outputs.ts';
import type * as azuread from '@pulumi/azuread';
import type { CredentialKind, InfraConfig, PermissionName } from './config.ts';
import { ClientCredentials } from './client-credentials.ts';
import { FederatedIdentities } from './federated-identities.ts';
import { managedIdentityOf, ManagedIdentityRoles } from './managed-identity-roles.ts';
import type { CredentialKind as ConnectorCredential } from '../contract/stack-outputs.ts';
import { tokenRoles, verifyConsent, type GrantedRoles } from './consent-check.ts';
import { CustomerConsent } from './customer-consent.ts';
import { graphPermissionsOf, readsAuditSearch, type GraphPermission } from './graph-permissions.ts';
import { adminConsentUrl, readHomeStack, type HomeStackOutputs } from './home-stack.ts';
import { ConnectorKeyVault } from './key-vault.ts';
import { ManagementApiApp, type ManagementApiAppArgs } from './management-api-app.ts';
import { azureadProvider, azureNativeProvider } from './providers.ts';
import { LoggingSubscription } from './subscription-alias.ts';
import { SentinelDestination } from './sentinel.ts';
import { discoverTenant, type Tenant } from './tenant.ts';

/**
 * Content types the granted application permissions can read: DLP.All needs ActivityFeed.ReadDlp; ServiceHealth (from
 * Microsoft Graph) needs both Graph permissions. The Management API's own ServiceHealth.Read reads nothing any more.
 */
export function readableContentTypes(permissions: readonly PermissionName[], graph: readonly GraphPermission[] = []): CollectedType[] {
  const audit: CollectedType[] = permissions.includes('ActivityFeed.Read') ? contentTypes.filter((type) => type !== 'DLP.All' || permissions.includes('ActivityFeed.ReadDlp')) : [];
  return graphServiceHealthPermissions.every((permission) => graph.includes(permission)) ? [...audit, serviceHealth] : audit;
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
  /** How a verify-only customer stack learns which permissions the app holds; tests replace the token request. */
  readonly grantedRoles?: GrantedRoles;
}

/** What a stack exports: the connector's configuration (single and customer stacks), or what customer stacks read (home). */
export type StackOutputs = ConnectorOutputs | HomeStackOutputs;

/** The program for the configured mode. Async because a customer stack reads its home stack before declaring anything. */
export async function provision(config: InfraConfig, options: ProvisionOptions = {}): Promise<StackOutputs> {
  switch (config.mode) {
    case 'single': return config.credential === 'managedIdentity' ? provisionManagedIdentity(config) : provisionSingle(config, options);
    case 'home': return provisionHome(config, options);
    case 'customer': return provisionCustomer(config, options);
  }
}

/** Which credential the connector must use, for the outputs: an app with both a secret and a certificate hands out the secret. */
export function connectorCredentialOf(credential: CredentialKind): ConnectorCredential {
  return credential === 'both' ? 'secret' : credential;
}

interface ProvisionedApp {
  readonly app: ManagementApiApp;
  readonly credentials: ClientCredentials;
  readonly federated: FederatedIdentities | undefined;
  readonly credential: ConnectorCredential;
  readonly vault: ConnectorKeyVault | undefined;
  readonly alias: LoggingSubscription | undefined;
}

/** The app registration, its credentials and the optional vault and subscription: what single and home stacks share. */
function appWithCredentials(config: InfraConfig, azure: azuread.Provider, tenant: Tenant, audience: ManagementApiAppArgs['audience'], options: ProvisionOptions): ProvisionedApp {
  const app = new ManagementApiApp('o365-connector', {
    displayName: config.displayName,
    permissions: config.permissions,
    delegatedPermissions: config.delegatedPermissions,
    graphPermissions: graphPermissionsOf(config),
    ownerObjectId: tenant.deployerObjectId,
    audience,
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
  const federated = config.credential === 'federated'
    ? new FederatedIdentities('o365-connector-federated', { applicationId: app.application.id, identities: config.federatedIdentities, provider: azure })
    : undefined;

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
  return { app, credentials, federated, credential: connectorCredentialOf(config.credential), vault, alias };
}

/** The optional outputs of the credentials, vault and subscription: absent, not undefined, when their feature is off. */
function credentialOutputs({ credentials, credential, vault, alias }: ProvisionedApp) {
  return {
    credential: pulumi.output(credential),
    ...(credentials.clientSecret ? { clientSecret: credentials.clientSecret } : {}),
    ...(credentials.clientSecretExpiry ? { clientSecretExpiry: credentials.clientSecretExpiry } : {}),
    ...(credentials.certificate ? { certificateKeyId: credentials.certificate.keyId } : {}),
    ...(vault ? { keyVaultUri: vault.vaultUri, keyVaultSecretName: pulumi.output(vault.secretName) } : {}),
    ...(alias ? { subscriptionId: alias.subscriptionId } : {}),
  };
}

/** One tenant, one single-tenant app consented in it: the outputs file of that tenant. */
function provisionSingle(config: InfraConfig, options: ProvisionOptions): ConnectorOutputs {
  const azure = azureadProvider(config.cloud, config.azureadSettings);
  const tenant = discoverTenant(azure);
  const provisioned = appWithCredentials(config, azure, tenant, 'single', options);
  return {
    ...tenantOutputs(config, tenant, sentinelOf(config, provisioned.app.servicePrincipal?.objectId)),
    clientId: provisioned.app.clientId,
    ...credentialOutputs(provisioned),
  };
}

/**
 * What a single-tenant stack exports whatever its identity: the tenant, the cloud's endpoints, what the permissions
 * read (requested and, in a single stack, consented by the same pulumi up) and the Sentinel destination.
 */
function tenantOutputs(config: InfraConfig, tenant: ReturnType<typeof discoverTenant>, sentinel: SentinelDestination | undefined) {
  const endpoints = clouds[config.cloud];
  const graph = graphPermissionsOf(config);
  return {
    connectorName: pulumi.output(config.displayName),
    tenantId: tenant.tenantId,
    tenantDomain: tenant.tenantDomain,
    publisherId: config.publisherId ? pulumi.output(config.publisherId) : tenant.tenantId,
    cloud: pulumi.output(config.cloud),
    authorityHost: pulumi.output(endpoints.authorityHost),
    apiRoot: pulumi.output(endpoints.apiRoot),
    ...(graph.length > 0 ? { graphRoot: pulumi.output(endpoints.graphRoot) } : {}),
    contentTypes: pulumi.output(readableContentTypes(config.permissions, graph)),
    auditSearch: pulumi.output(readsAuditSearch(graph)),
    ...(sentinel ? { sentinelEndpoint: sentinel.endpointUrl, sentinelRule: sentinel.ruleId, sentinelStream: pulumi.output(sentinel.stream) } : {}),
  };
}

/**
 * The Sentinel destination beside the configured workspace, through a provider signed in to the workspace's
 * subscription; the role to send goes to the app's service principal unless another principal is configured.
 */
function sentinelOf(config: InfraConfig, connector: pulumi.Input<string> | undefined): SentinelDestination | undefined {
  if (!config.sentinel) return undefined;
  const sender = config.sentinel.principalId ?? connector;
  if (sender === undefined) return undefined;
  const provider = azureNativeProvider(config.cloud, { ...config.azureNativeSettings, subscriptionId: config.sentinel.subscriptionId }, 'azure-native-sentinel');
  return new SentinelDestination('o365-connector-sentinel', { ...config.sentinel, senderObjectId: sender, provider });
}

/**
 * One tenant, no app at all: an existing managed identity gets the application permissions by app role assignments, and
 * the outputs name it (its client id when user-assigned; none for a host's system-assigned one, which the host knows).
 */
async function provisionManagedIdentity(config: InfraConfig): Promise<ConnectorOutputs> {
  const azure = azureadProvider(config.cloud, config.azureadSettings);
  const tenant = discoverTenant(azure);
  const identity = await managedIdentityOf(config.managedIdentityPrincipalId!, azure);
  new ManagedIdentityRoles('o365-connector-identity', { principalObjectId: identity.objectId, permissions: config.permissions, graphPermissions: graphPermissionsOf(config), provider: azure });
  return {
    // The identity sends to Sentinel too, unless another principal is configured.
    ...tenantOutputs(config, tenant, sentinelOf(config, identity.objectId)),
    ...(identity.userAssigned ? { clientId: pulumi.output(identity.clientId) } : {}),
    credential: pulumi.output('managedIdentity' as const),
  };
}

/** The provider's tenant: the multi-tenant app and its credentials, exported for the customer stacks. */
function provisionHome(config: InfraConfig, options: ProvisionOptions): HomeStackOutputs {
  const endpoints = clouds[config.cloud];
  const azure = azureadProvider(config.cloud, config.azureadSettings);
  const tenant = discoverTenant(azure);
  const provisioned = appWithCredentials(config, azure, tenant, 'multiTenant', options);
  const clientId = provisioned.app.clientId;
  return {
    mode: pulumi.output('home' as const),
    connectorName: pulumi.output(config.displayName),
    clientId,
    ...credentialOutputs(provisioned),
    // readConfig refuses managedIdentity in a home stack: it registers no app to consent to.
    credential: pulumi.output(provisioned.credential as Exclude<ConnectorCredential, 'managedIdentity'>),
    cloud: pulumi.output(config.cloud),
    homeTenantId: tenant.tenantId,
    permissions: pulumi.output([...config.permissions]),
    delegatedPermissions: pulumi.output([...config.delegatedPermissions]),
    graphPermissions: pulumi.output(graphPermissionsOf(config)),
    // "organizations": the tenant of whichever admin signs in; a customer stack names the customer's own tenant.
    adminConsentUrl: clientId.apply((id) => adminConsentUrl(endpoints.authorityHost, 'organizations', id)),
  };
}

/**
 * A customer tenant: the home stack's app gets its service principal and admin consent there (or, with consent
 * verify, is checked for them), and the stack exports that tenant's outputs file, its secret the home stack's.
 */
async function provisionCustomer(config: InfraConfig, options: ProvisionOptions): Promise<ConnectorOutputs> {
  const homeStack = config.homeStack!;
  const endpoints = clouds[config.cloud];
  const azure = azureadProvider(config.cloud, config.azureadSettings);
  const reference = new pulumi.StackReference('home', { name: homeStack });
  const home = await readHomeStack(reference, homeStack, config.cloud);

  if (config.consent === 'verify') {
    await verifyConsent({
      clientId: home.clientId, clientSecret: home.clientSecret, connectorName: home.connectorName, permissions: home.permissions,
      graphPermissions: home.graphPermissions ?? [], endpoints, provider: azure, grantedRoles: options.grantedRoles ?? tokenRoles,
    });
  } else {
    new CustomerConsent('o365-connector', { clientId: home.clientId, permissions: home.permissions, delegatedPermissions: home.delegatedPermissions, graphPermissions: home.graphPermissions ?? [], provider: azure });
  }

  const tenant = discoverTenant(azure);
  return {
    connectorName: pulumi.output(home.connectorName),
    tenantId: tenant.tenantId,
    tenantDomain: tenant.tenantDomain,
    clientId: pulumi.output(home.clientId),
    // The home app's credential: a federated one signs in to every customer tenant with the same workload token.
    credential: pulumi.output(home.credential ?? (home.clientSecret !== undefined ? 'secret' : 'certificate')),
    // Straight from the reference, so a rotation in the home stack reaches this file with the next pulumi up.
    ...(home.clientSecret !== undefined ? { clientSecret: pulumi.secret(reference.requireOutput('clientSecret') as pulumi.Output<string>) } : {}),
    ...(home.clientSecretExpiry !== undefined ? { clientSecretExpiry: pulumi.output(home.clientSecretExpiry) } : {}),
    ...(home.certificateKeyId !== undefined ? { certificateKeyId: pulumi.output(home.certificateKeyId) } : {}),
    // The customer tenant's own throttling bucket.
    publisherId: tenant.tenantId,
    cloud: pulumi.output(config.cloud),
    authorityHost: pulumi.output(endpoints.authorityHost),
    apiRoot: pulumi.output(endpoints.apiRoot),
    ...((home.graphPermissions ?? []).length > 0 ? { graphRoot: pulumi.output(endpoints.graphRoot) } : {}),
    contentTypes: pulumi.output(readableContentTypes(home.permissions, home.graphPermissions ?? [])),
    // Consented above, or checked there with consent verify.
    auditSearch: pulumi.output(readsAuditSearch(home.graphPermissions ?? [])),
  };
}
