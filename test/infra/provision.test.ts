import { describe, expect, it } from 'vitest';
import * as pulumi from '@pulumi/pulumi';
import { clouds, cloudNames } from '../../contract/clouds.ts';
import { keyVaultSecretsUserRoleId } from '../../infra/key-vault.ts';
import { runProgram, type ProgramRun } from './harness.ts';
import { subscriptionGuid, tenantId, unwrapSecret, valueOf } from './mocks.ts';

async function resolved(outputs: ProgramRun['outputs']): Promise<Record<string, unknown>> {
  const entries = await Promise.all(Object.entries(outputs).map(async ([key, output]) => [key, await valueOf(output as pulumi.Output<unknown>)] as const));
  return Object.fromEntries(entries);
}

const keyVaultSettings = { keyVault: 'true', keyVaultResourceGroup: 'rg-soc', keyVaultLocation: 'westeurope', keyVaultName: 'kv-o365-soc' };

describe('provisioning program', () => {
  it('exports exactly the connector configuration, with only the client secret marked secret', async () => {
    const { outputs } = await runProgram();
    expect(await resolved(outputs)).toEqual({
      connectorName: 'o365-connector',
      tenantId,
      tenantDomain: 'contoso.onmicrosoft.com',
      clientId: '3f9a6c2e-8d41-4b7a-9e05-6c1d2b3a4f58',
      credential: 'secret',
      clientSecret: 'value-of-o365-connector-secret-0',
      clientSecretExpiry: '2027-05-24T00:00:00Z',
      publisherId: tenantId,
      cloud: 'commercial',
      authorityHost: 'https://login.microsoftonline.com',
      apiRoot: 'https://manage.office.com',
      graphRoot: 'https://graph.microsoft.com',
      contentTypes: ['Audit.AzureActiveDirectory', 'Audit.Exchange', 'Audit.SharePoint', 'Audit.General', 'DLP.All', 'ServiceHealth'],
      auditSearch: true,
    });
    for (const [key, output] of Object.entries(outputs)) {
      expect([key, await pulumi.isSecret(output as pulumi.Output<unknown>)]).toEqual([key, key === 'clientSecret']);
    }
  });

  it('discovers the tenant: id from the signed-in client config, domain from the initial domain only', async () => {
    const { calls } = await runProgram();
    expect(calls.find((call) => call.token === 'azuread:index/getDomains:getDomains')!.inputs).toEqual({ onlyInitial: true });
    expect(calls.some((call) => call.token === 'azuread:index/getClientConfig:getClientConfig')).toBe(true);
  });

  it('uses a configured publisher id instead of the tenant id', async () => {
    const { outputs } = await runProgram({ publisherId: '6b7e2f40-1c3d-4e5f-8a9b-0c1d2e3f4a5b' });
    expect(await valueOf(outputs.publisherId)).toBe('6b7e2f40-1c3d-4e5f-8a9b-0c1d2e3f4a5b');
  });

  it('exports no DLP.All content type without ActivityFeed.ReadDlp', async () => {
    const { outputs } = await runProgram({ permissions: 'ActivityFeed.Read,ServiceHealth.Read' });
    expect(await valueOf(outputs.contentTypes)).toEqual(['Audit.AzureActiveDirectory', 'Audit.Exchange', 'Audit.SharePoint', 'Audit.General', 'ServiceHealth']);
  });

  it('with serviceHealth and auditSearch off exports neither ServiceHealth nor a Graph root: the connector is not told to read what it cannot', async () => {
    const { outputs } = await runProgram({ serviceHealth: 'false', auditSearch: 'false' });
    expect(await valueOf(outputs.contentTypes)).toEqual(['Audit.AzureActiveDirectory', 'Audit.Exchange', 'Audit.SharePoint', 'Audit.General', 'DLP.All']);
    expect('graphRoot' in outputs).toBe(false);
  });

  it.each([
    ['commercial', 'https://graph.microsoft.com'],
    ['gcc', 'https://graph.microsoft.com'],
    ['gcchigh', 'https://graph.microsoft.us'],
    ['dod', 'https://dod-graph.microsoft.us'],
    ['china', 'https://microsoftgraph.chinacloudapi.cn'],
  ] as const)('exports %s\'s own Microsoft Graph root for service health (%s)', async (cloud, graphRoot) => {
    const { outputs } = await runProgram({ cloud });
    expect(await valueOf(outputs.graphRoot!)).toBe(graphRoot);
  });

  it.each([
    ['commercial', 'global', 'public'],
    ['gcc', 'global', 'public'],
    ['gcchigh', 'usgovernmentl4', 'usgovernment'],
    ['dod', 'usgovernmentl5', 'usgovernment'],
    ['china', 'china', 'china'],
  ] as const)('points %s at its own endpoints and the azuread (%s) and azure-native (%s) environments', async (cloud, azureadEnvironment, armEnvironment) => {
    const { outputs, ofType, resources } = await runProgram({ cloud, ...keyVaultSettings });
    expect(await valueOf(outputs.cloud)).toBe(cloud);
    expect(await valueOf(outputs.apiRoot)).toBe(clouds[cloud].apiRoot);
    expect(await valueOf(outputs.authorityHost)).toBe(clouds[cloud].authorityHost);
    expect(ofType('pulumi:providers:azuread').map((provider) => provider.inputs.environment)).toEqual([azureadEnvironment]);
    expect(ofType('pulumi:providers:azure-native').map((provider) => provider.inputs.environment)).toEqual([armEnvironment]);
    // Every Azure resource goes through the cloud's explicit provider, none through a default provider.
    for (const resource of resources.filter((r) => /^azure(ad|-native):/.test(r.type))) {
      const provider = resource.type.split(':')[0]!;
      expect(resource.provider, `${resource.type} ${resource.name}`).toMatch(new RegExp(`\\$pulumi:providers:${provider}::${provider}::`));
    }
  });

  it('covers every cloud of the shared table', () => {
    expect(cloudNames).toEqual(['commercial', 'gcc', 'gcchigh', 'dod', 'china']);
  });

  it('hands the stack\'s azuread settings to the explicit provider, booleans as booleans and credentials as secrets', async () => {
    const { ofType } = await runProgram({ 'azuread:tenantId': tenantId, 'azuread:useOidc': 'true', 'azuread:clientSecret': 'deployer-secret' });
    const [provider] = ofType('pulumi:providers:azuread');
    expect(provider!.inputs).toMatchObject({ tenantId, useOidc: 'true', environment: 'global' });
    expect(unwrapSecret(provider!.inputs.clientSecret)).toBe('deployer-secret');
  });

  it('creates no Key Vault, subscription alias, certificate or azure-native provider by default', async () => {
    const { resources, outputs } = await runProgram();
    expect(resources.filter((r) => r.type.startsWith('azure-native') || r.type === 'pulumi:providers:azure-native')).toEqual([]);
    expect(resources.filter((r) => r.type === 'azuread:index/applicationCertificate:ApplicationCertificate')).toEqual([]);
    expect(Object.keys(outputs)).not.toEqual(expect.arrayContaining(['keyVaultUri']));
    for (const key of ['keyVaultUri', 'keyVaultSecretName', 'subscriptionId', 'certificateKeyId']) expect(key in outputs).toBe(false);
  });

  it('stores the current secret in an RBAC-mode Key Vault when enabled and exports its URI and secret name', async () => {
    const { ofType, outputs } = await runProgram({ ...keyVaultSettings, secretRotation: '4', keyVaultSecretReaders: '5d6e7f80-9a0b-4c1d-8e2f-3a4b5c6d7e8f,Group:8e9f0a1b-2c3d-4e5f-9a6b-7c8d9e0f1a2b' });
    const [vault] = ofType('azure-native:keyvault:Vault');
    expect(vault!.inputs).toMatchObject({ resourceGroupName: 'rg-soc', location: 'westeurope', vaultName: 'kv-o365-soc' });
    expect(vault!.inputs.properties).toMatchObject({
      tenantId, sku: { family: 'A', name: 'standard' }, enableRbacAuthorization: true, enableSoftDelete: true, softDeleteRetentionInDays: 90, enablePurgeProtection: true,
    });
    const [secret] = ofType('azure-native:keyvault:Secret');
    expect(secret!.inputs).toMatchObject({ resourceGroupName: 'rg-soc', vaultName: 'kv-o365-soc', secretName: 'o365-connector-client-secret' });
    const properties = unwrapSecret(secret!.inputs.properties);
    expect(properties.value).toBe('value-of-o365-connector-secret-4');
    expect(properties.attributes).toEqual({ enabled: true, expires: Date.parse('2027-05-24T00:00:00Z') / 1000 });
    const scope = `/subscriptions/${subscriptionGuid}/resourceGroups/rg-soc/providers/Microsoft.KeyVault/vaults/kv-o365-soc`;
    const roleDefinitionId = `/subscriptions/${subscriptionGuid}/providers/Microsoft.Authorization/roleDefinitions/${keyVaultSecretsUserRoleId}`;
    expect(ofType('azure-native:authorization:RoleAssignment').map((assignment) => assignment.inputs)).toEqual([
      { scope, roleDefinitionId, principalId: '5d6e7f80-9a0b-4c1d-8e2f-3a4b5c6d7e8f', principalType: 'ServicePrincipal' },
      { scope, roleDefinitionId, principalId: '8e9f0a1b-2c3d-4e5f-9a6b-7c8d9e0f1a2b', principalType: 'Group' },
    ]);
    expect(await valueOf(outputs.keyVaultUri!)).toBe('https://kv-o365-soc.vault.azure.net/');
    expect(await valueOf(outputs.keyVaultSecretName!)).toBe('o365-connector-client-secret');
    expect(ofType('pulumi:providers:azure-native')).toHaveLength(1);
  });

  it('creates a subscription alias when a billing scope is configured', async () => {
    const billingScope = '/providers/Microsoft.Billing/billingAccounts/1234567/enrollmentAccounts/7654321';
    const { ofType, outputs } = await runProgram({ billingScope, subscriptionWorkload: 'DevTest', 'azure-native:location': 'westeurope' });
    expect(ofType('azure-native:subscription:Alias').map((alias) => alias.inputs)).toEqual([{
      aliasName: 'o365-connector-logging',
      properties: { billingScope, displayName: 'o365-connector logging', workload: 'DevTest' },
    }]);
    expect(ofType('pulumi:providers:azure-native')[0]!.inputs).toMatchObject({ environment: 'public', location: 'westeurope' });
    expect(await valueOf(outputs.subscriptionId!)).toBe('11111111-2222-3333-4444-555555555555');
  });

  it('rejects bad config before creating anything', async () => {
    await expect(runProgram({ cloud: 'azure-germany' })).rejects.toThrow('o365-connector:cloud: unknown value "azure-germany"');
  });
});
