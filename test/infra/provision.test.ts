import { describe, expect, it } from 'vitest';
import * as pulumi from '@pulumi/pulumi';
import { managementApiAppId, clouds } from '../../connector/config/clouds.ts';
import { readConfig, type InfraConfig } from '../../infra/config.ts';
import { provision, type ConnectorOutputs } from '../../infra/provision.ts';
import { appRoleIds, installMocks, unwrapSecret, oauth2PermissionScopeIds, resourceServicePrincipalObjectId, tenantId, valueOf, type RecordedResource } from './mocks.ts';

const now = new Date('2026-11-25T00:00:00Z');

async function run(settings: Record<string, string> = {}) {
  const recorded = installMocks();
  const config: InfraConfig = readConfig({ get: (key) => settings[key] });
  const outputs = provision(config, { now });
  // Wait for every registration the program started, so the recorded graph is complete.
  await pulumi.runtime.disconnect();
  const ofType = (type: string): RecordedResource[] => recorded.resources.filter((r) => r.type === type);
  return { ...recorded, outputs, ofType };
}

const applicationType = 'azuread:index/application:Application';
const passwordType = 'azuread:index/applicationPassword:ApplicationPassword';

describe('provisioning program', () => {
  it('requests every documented permission as Role and as Scope on the Office 365 Management APIs, ids looked up by value', async () => {
    const { ofType } = await run();
    const [app] = ofType(applicationType);
    expect(app!.inputs.displayName).toBe('o365-connector');
    expect(app!.inputs.requiredResourceAccesses).toHaveLength(1);
    const access = app!.inputs.requiredResourceAccesses[0];
    expect(access.resourceAppId).toBe(managementApiAppId);
    expect(access.resourceAccesses).toEqual(expect.arrayContaining([
      { id: appRoleIds['ActivityFeed.Read'], type: 'Role' },
      { id: appRoleIds['ActivityFeed.ReadDlp'], type: 'Role' },
      { id: appRoleIds['ServiceHealth.Read'], type: 'Role' },
      { id: oauth2PermissionScopeIds['ActivityFeed.Read'], type: 'Scope' },
      { id: oauth2PermissionScopeIds['ActivityFeed.ReadDlp'], type: 'Scope' },
      { id: oauth2PermissionScopeIds['ServiceHealth.Read'], type: 'Scope' },
    ]));
    expect(access.resourceAccesses).toHaveLength(6);
  });

  it('grants admin consent: one app role assignment per application permission and one delegated grant', async () => {
    const { ofType } = await run();
    const assignments = ofType('azuread:index/appRoleAssignment:AppRoleAssignment');
    expect(assignments.map((a) => a.inputs.appRoleId).sort()).toEqual(
      [appRoleIds['ActivityFeed.Read'], appRoleIds['ActivityFeed.ReadDlp'], appRoleIds['ServiceHealth.Read']].sort(),
    );
    for (const assignment of assignments) {
      expect(assignment.inputs.resourceObjectId).toBe(resourceServicePrincipalObjectId);
      expect(assignment.inputs.principalObjectId).toBe('sp-object-of-o365-connector');
    }
    const grants = ofType('azuread:index/servicePrincipalDelegatedPermissionGrant:ServicePrincipalDelegatedPermissionGrant');
    expect(grants).toHaveLength(1);
    expect(grants[0]!.inputs).toMatchObject({
      servicePrincipalObjectId: 'sp-object-of-o365-connector',
      resourceServicePrincipalObjectId,
      claimValues: ['ActivityFeed.Read', 'ActivityFeed.ReadDlp', 'ServiceHealth.Read'],
    });
    const [sp] = ofType('azuread:index/servicePrincipal:ServicePrincipal');
    expect(sp!.inputs.clientId).toBe('client-of-o365-connector');
  });

  it('requests nothing beyond the configured set when DLP is dropped, and drops DLP.All from the content types', async () => {
    const { ofType, outputs } = await run({ permissions: 'ActivityFeed.Read,ServiceHealth.Read' });
    const ids = ofType(applicationType)[0]!.inputs.requiredResourceAccesses[0].resourceAccesses.map((a: { id: string }) => a.id);
    expect(ids.sort()).toEqual([appRoleIds['ActivityFeed.Read'], appRoleIds['ServiceHealth.Read'], oauth2PermissionScopeIds['ActivityFeed.Read'], oauth2PermissionScopeIds['ServiceHealth.Read']].sort());
    expect(ofType('azuread:index/appRoleAssignment:AppRoleAssignment')).toHaveLength(2);
    expect(ofType('azuread:index/servicePrincipalDelegatedPermissionGrant:ServicePrincipalDelegatedPermissionGrant')[0]!.inputs.claimValues).toEqual(['ActivityFeed.Read', 'ServiceHealth.Read']);
    expect(await valueOf(outputs.contentTypes)).toEqual(['Audit.AzureActiveDirectory', 'Audit.Exchange', 'Audit.SharePoint', 'Audit.General']);
  });

  it('exports the connector configuration with the client secret marked secret', async () => {
    const { outputs } = await run();
    const values = {
      connectorName: await valueOf(outputs.connectorName),
      tenantId: await valueOf(outputs.tenantId),
      tenantDomain: await valueOf(outputs.tenantDomain),
      clientId: await valueOf(outputs.clientId),
      clientSecret: await valueOf(outputs.clientSecret!),
      clientSecretExpiry: await valueOf(outputs.clientSecretExpiry!),
      publisherId: await valueOf(outputs.publisherId),
      cloud: await valueOf(outputs.cloud),
      authorityHost: await valueOf(outputs.authorityHost),
      apiRoot: await valueOf(outputs.apiRoot),
      contentTypes: await valueOf(outputs.contentTypes),
    };
    expect(values).toEqual({
      connectorName: 'o365-connector',
      tenantId,
      tenantDomain: 'contoso.onmicrosoft.com',
      clientId: 'client-of-o365-connector',
      clientSecret: 'secret-value-o365-connector-secret-a-0',
      clientSecretExpiry: '2027-05-24T00:00:00.000Z',
      publisherId: tenantId,
      cloud: 'commercial',
      authorityHost: 'https://login.microsoftonline.com',
      apiRoot: 'https://manage.office.com',
      contentTypes: ['Audit.AzureActiveDirectory', 'Audit.Exchange', 'Audit.SharePoint', 'Audit.General', 'DLP.All'],
    });
    expect(await pulumi.isSecret(outputs.clientSecret!)).toBe(true);
    expect(await pulumi.isSecret(outputs.tenantId)).toBe(false);
  });

  it('uses a configured publisher id instead of the tenant id', async () => {
    const { outputs } = await run({ publisherId: '6b7e2f40-1c3d-4e5f-8a9b-0c1d2e3f4a5b' });
    expect(await valueOf(outputs.publisherId)).toBe('6b7e2f40-1c3d-4e5f-8a9b-0c1d2e3f4a5b');
  });

  it.each([
    ['gcc', 'global'],
    ['gcchigh', 'usgovernmentl4'],
    ['dod', 'usgovernmentl5'],
    ['china', 'china'],
  ] as const)('points %s at its own endpoints and azuread environment', async (cloud, environment) => {
    const { outputs, ofType } = await run({ cloud });
    expect(await valueOf(outputs.apiRoot)).toBe(clouds[cloud].apiRoot);
    expect(await valueOf(outputs.authorityHost)).toBe(clouds[cloud].authorityHost);
    expect(await valueOf(outputs.cloud)).toBe(cloud);
    expect(ofType('pulumi:providers:azuread')[0]!.inputs.environment).toBe(environment);
  });

  it('rotation replaces only the older secret slot and points the output at the new secret', async () => {
    const slots = async (generation: number) => {
      const { ofType, outputs } = await run({ secretRotation: String(generation) });
      const bySlot = Object.fromEntries(ofType(passwordType).map((p) => [p.name, p.inputs.rotateWhenChanged.generation]));
      return { bySlot, secret: await valueOf(outputs.clientSecret!) };
    };
    const first = await slots(0);
    expect(first.bySlot).toEqual({ 'o365-connector-secret-a': '0' });
    const second = await slots(1);
    expect(second.bySlot).toEqual({ 'o365-connector-secret-a': '0', 'o365-connector-secret-b': '1' });
    expect(second.secret).toBe('secret-value-o365-connector-secret-b-1');
    const third = await slots(2);
    expect(third.bySlot).toEqual({ 'o365-connector-secret-a': '2', 'o365-connector-secret-b': '1' });
    expect(third.secret).toBe('secret-value-o365-connector-secret-a-2');
    // Exactly one slot changed per bump: the secret running connectors hold (generation g-1) survives.
    for (const [before, after] of [[first, second], [second, third]] as const) {
      const changed = Object.keys(after.bySlot).filter((slot) => before.bySlot[slot] !== undefined && before.bySlot[slot] !== after.bySlot[slot]);
      expect(changed.length).toBeLessThanOrEqual(1);
      expect(Object.values(after.bySlot)).toContain(String(Number(Object.values(before.bySlot).sort().at(-1))));
    }
  });

  it('gives new secrets the configured lifetime and keeps expiry out of later diffs', async () => {
    const { ofType } = await run({ secretLifetimeDays: '30' });
    const [password] = ofType(passwordType);
    expect(password!.inputs.endDate).toBe('2026-12-25T00:00:00.000Z');
  });

  it('adds no Key Vault, subscription alias, certificate or ARM provider by default', async () => {
    const { resources, outputs } = await run();
    expect(resources.filter((r) => r.type.startsWith('azure-native'))).toEqual([]);
    expect(resources.filter((r) => r.type === 'azuread:index/applicationCertificate:ApplicationCertificate')).toEqual([]);
    expect(outputs.keyVaultUri).toBeUndefined();
    expect(outputs.subscriptionId).toBeUndefined();
  });

  it('stores the secret in an RBAC-mode Key Vault when enabled and exports its URI', async () => {
    const { ofType, outputs } = await run({ keyVault: 'true', keyVaultResourceGroup: 'rg-soc', keyVaultLocation: 'westeurope', keyVaultName: 'kv-o365-soc' });
    const [vault] = ofType('azure-native:keyvault:Vault');
    expect(vault!.inputs).toMatchObject({ resourceGroupName: 'rg-soc', location: 'westeurope', vaultName: 'kv-o365-soc' });
    expect(vault!.inputs.properties).toMatchObject({ tenantId, enableRbacAuthorization: true, sku: { family: 'A', name: 'standard' } });
    const [secret] = ofType('azure-native:keyvault:Secret');
    expect(unwrapSecret(secret!.inputs.properties).value).toBe('secret-value-o365-connector-secret-a-0');
    expect(await valueOf(outputs.keyVaultUri!)).toBe('https://kv-o365-soc.vault.azure.net/');
    expect(ofType('pulumi:providers:azure-native')[0]!.inputs.environment).toBe('public');
  });

  it('creates a subscription alias when a billing scope is configured', async () => {
    const billingScope = '/providers/Microsoft.Billing/billingAccounts/1234567/enrollmentAccounts/7654321';
    const { ofType, outputs } = await run({ billingScope });
    const [alias] = ofType('azure-native:subscription:Alias');
    expect(alias!.inputs.properties).toEqual({ billingScope, displayName: 'o365-connector logging', workload: 'Production' });
    expect(await valueOf(outputs.subscriptionId!)).toBe('11111111-2222-3333-4444-555555555555');
  });

  it('registers a certificate credential when configured, beside or instead of the secret', async () => {
    const certificatePem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----';
    const both = await run({ credential: 'both', certificatePem });
    const [certificate] = both.ofType('azuread:index/applicationCertificate:ApplicationCertificate');
    expect(certificate!.inputs).toMatchObject({ type: 'AsymmetricX509Cert', encoding: 'pem', applicationId: '/applications/object-of-o365-connector' });
    expect(unwrapSecret(certificate!.inputs.value)).toBe(certificatePem);
    expect(both.ofType(passwordType)).toHaveLength(1);
    const only = await run({ credential: 'certificate', certificatePem });
    expect(only.ofType(passwordType)).toHaveLength(0);
    expect(only.outputs.clientSecret).toBeUndefined();
  });
});

describe('stack configuration', () => {
  const read = (settings: Record<string, string>) => () => readConfig({ get: (key) => settings[key] });
  it.each([
    [{ cloud: 'azure-germany' }, /o365-connector:cloud: unknown value "azure-germany"; use one of commercial, gcc, gcchigh, dod, china/],
    [{ displayName: '  ' }, /o365-connector:displayName: must not be empty/],
    [{ secretLifetimeDays: '0' }, /o365-connector:secretLifetimeDays: 0 is out of range; use 1 to 730 days/],
    [{ secretLifetimeDays: '731' }, /o365-connector:secretLifetimeDays: 731 is out of range/],
    [{ secretLifetimeDays: 'six months' }, /o365-connector:secretLifetimeDays: "six months" is not a whole number/],
    [{ secretRotation: '-1' }, /o365-connector:secretRotation: -1 is out of range/],
    [{ permissions: 'ActivityFeed.Read,Mail.Read' }, /o365-connector:permissions: unknown permission "Mail.Read"/],
    [{ permissions: 'ServiceHealth.Read' }, /o365-connector:permissions: must include ActivityFeed.Read/],
    [{ credential: 'certificate' }, /o365-connector:certificatePem: required when credential is certificate/],
    [{ credential: 'both', certificatePem: '-----BEGIN PRIVATE KEY-----' }, /o365-connector:certificatePem: is not a PEM certificate/],
    [{ publisherId: 'contoso' }, /o365-connector:publisherId: "contoso" is not a GUID/],
    [{ keyVault: 'true' }, /o365-connector:keyVaultResourceGroup: required when keyVault is true/],
    [{ keyVault: 'yes' }, /o365-connector:keyVault: "yes" is not true or false/],
    [{ billingScope: 'billing-account-1' }, /o365-connector:billingScope: must look like \/providers\/Microsoft.Billing/],
  ])('rejects %j with a message naming the key', (settings, message) => {
    expect(read(settings)).toThrow(message);
  });

  it('applies documented defaults on a bare stack', () => {
    expect(readConfig({ get: () => undefined })).toEqual({
      displayName: 'o365-connector', cloud: 'commercial', permissions: ['ActivityFeed.Read', 'ActivityFeed.ReadDlp', 'ServiceHealth.Read'],
      credential: 'secret', secretLifetimeDays: 180, secretRotation: 0, certificatePem: undefined, publisherId: undefined,
      keyVault: undefined, subscriptionAlias: undefined,
    });
  });
});
