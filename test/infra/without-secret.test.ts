import { describe, expect, it } from 'vitest';
import * as pulumi from '@pulumi/pulumi';
import { loadConfig } from '../../connector/config/config.ts';
import { stackOutputsSchema } from '../../contract/stack-outputs.ts';
import { InfraConfigError, readConfig } from '../../infra/config.ts';
import { homeOutputsSchema, type HomeStackOutputs } from '../../infra/home-stack.ts';
import { federatedCredentialName } from '../../infra/federated-identities.ts';
import { runProgram, stackSettings, type ProgramRun } from './harness.ts';
import { appClientId, appRoleIds, customerTenant, graphAppRoleIds, graphServicePrincipalObjectId, homeOutputs, homeStackName, resourceServicePrincipalObjectId, tenantId, valueOf } from './mocks.ts';

async function shown(outputs: object): Promise<Record<string, unknown>> {
  return Object.fromEntries(await Promise.all(Object.entries(outputs).map(async ([key, output]) => [key, await valueOf(output as pulumi.Output<unknown>)] as const)));
}

const aks = { issuer: 'https://westeurope.oic.prod-aks.azure.com/2f0c3a11-6c55-4d8a-9a1e-0d7d2c1b4e77/7c1a2b3c-4d5e-4f60-8a9b-0c1d2e3f4a5b/', subject: 'system:serviceaccount:soc:o365-connector' };
const github = { issuer: 'https://token.actions.githubusercontent.com', subject: 'repo:contoso/soc:environment:production', audience: 'api://AzureADTokenExchange' };
const federated = { credential: 'federated', federatedIdentities: JSON.stringify([aks, github]) };

const userAssigned = { objectId: '6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c9d', clientId: '8e9f0a1b-2c3d-4e4f-9a5b-6c7d8e9f0a1b' };
const systemAssigned = { objectId: '5f6e7d8c-9b0a-4c1d-8e2f-3a4b5c6d7e8f', clientId: '9a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d' };
const principals = {
  [userAssigned.objectId]: { clientId: userAssigned.clientId, displayName: 'id-o365-connector', alternativeNames: ['isExplicit=True', '/subscriptions/0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9/resourcegroups/rg-soc/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id-o365-connector'] },
  [systemAssigned.objectId]: { clientId: systemAssigned.clientId, displayName: 'vm-collector', alternativeNames: ['isExplicit=False', '/subscriptions/0b1c2d3e-4f50-4617-8293-a4b5c6d7e8f9/resourceGroups/rg-soc/providers/Microsoft.Compute/virtualMachines/vm-collector'] },
  'd1e2f3a4-b5c6-4d7e-8f90-a1b2c3d4e5f6': { clientId: appClientId, displayName: 'some app', alternativeNames: [] },
};
const assignmentType = 'azuread:index/appRoleAssignment:AppRoleAssignment';

function problemsOf(settings: Record<string, string>): string[] {
  pulumi.runtime.setAllConfig(stackSettings(settings));
  try {
    readConfig(undefined, new Date('2026-11-25T00:00:00Z'));
  } catch (error) {
    if (error instanceof InfraConfigError) return error.problems.map((problem) => `${problem.key}: ${problem.message}`);
    throw error;
  }
  throw new Error('the configuration was accepted');
}

describe('credential federated', () => {
  it('registers one federated identity credential per workload (audience api://AzureADTokenExchange unless given) and no password; the outputs hold no secret', async () => {
    const run = await runProgram(federated);
    expect(run.ofType('azuread:index/applicationPassword:ApplicationPassword')).toEqual([]);
    const credentials = run.ofType('azuread:index/applicationFederatedIdentityCredential:ApplicationFederatedIdentityCredential');
    expect(credentials.map((credential) => credential.inputs)).toEqual([
      { applicationId: '/applications/object-of-o365-connector', displayName: federatedCredentialName({ ...aks, audience: 'api://AzureADTokenExchange' }), description: expect.stringContaining(aks.subject), issuer: aks.issuer, subject: aks.subject, audiences: ['api://AzureADTokenExchange'] },
      { applicationId: '/applications/object-of-o365-connector', displayName: federatedCredentialName(github), description: expect.stringContaining(github.subject), issuer: github.issuer, subject: github.subject, audiences: ['api://AzureADTokenExchange'] },
    ]);
    const outputs = await shown(run.outputs);
    expect(outputs).toMatchObject({ clientId: appClientId, credential: 'federated', tenantId });
    expect(outputs).not.toHaveProperty('clientSecret');
    expect(outputs).not.toHaveProperty('clientSecretExpiry');
    expect(stackOutputsSchema.strict().safeParse(outputs).error?.issues ?? []).toEqual([]);
    for (const output of Object.values(run.outputs)) expect(await pulumi.isSecret(output as pulumi.Output<unknown>)).toBe(false);
    // The connector reads these outputs as they are, with the token file Azure Workload Identity names.
    const { config } = await loadConfig({}, { ...Object.fromEntries(Object.entries({ O365_TENANT_ID: outputs['tenantId'], O365_CLIENT_ID: outputs['clientId'], O365_CREDENTIAL: outputs['credential'] }).map(([key, value]) => [key, String(value)])), AZURE_FEDERATED_TOKEN_FILE: '/var/run/secrets/azure/tokens/azure-identity-token' });
    expect(config.credential).toEqual({ kind: 'federated', tokenFile: '/var/run/secrets/azure/tokens/azure-identity-token' });
  });

  it('works in a home stack, and its customer stacks inherit it: their outputs say federated and hold no secret', async () => {
    const home = await runProgram<HomeStackOutputs>({ ...federated, mode: 'home' });
    const homeShown = await shown(home.outputs);
    expect(homeShown).toMatchObject({ mode: 'home', credential: 'federated' });
    expect(homeShown).not.toHaveProperty('clientSecret');
    expect(homeOutputsSchema.strict().safeParse(homeShown).error?.issues ?? []).toEqual([]);
    expect(home.ofType('azuread:index/applicationFederatedIdentityCredential:ApplicationFederatedIdentityCredential')).toHaveLength(2);
    const { clientSecret: _secret, clientSecretExpiry: _expiry, ...homeWithoutSecret } = homeOutputs;
    const customer = await runProgram({ mode: 'customer', homeStack: homeStackName, 'azuread:tenantId': customerTenant.tenantId }, undefined, { tenant: customerTenant, stacks: { [homeStackName]: { ...homeWithoutSecret, credential: 'federated' } } });
    const outputs = await shown(customer.outputs);
    expect(outputs).toMatchObject({ tenantId: customerTenant.tenantId, clientId: appClientId, credential: 'federated' });
    expect(outputs).not.toHaveProperty('clientSecret');
    expect(stackOutputsSchema.strict().safeParse(outputs).error?.issues ?? []).toEqual([]);
  });
});

describe('credential managedIdentity', () => {
  it('registers no app: the user-assigned identity gets the Management API and Graph roles (the audit search\'s too) by app role assignment, and the outputs name its client id', async () => {
    const run = await runProgram({ credential: 'managedIdentity', managedIdentityPrincipalId: userAssigned.objectId }, undefined, { principals });
    expect(run.ofType('azuread:index/application:Application')).toEqual([]);
    expect(run.ofType('azuread:index/servicePrincipal:ServicePrincipal')).toEqual([]);
    expect(run.ofType('azuread:index/applicationPassword:ApplicationPassword')).toEqual([]);
    // In any order: each assignment stands alone.
    expect(run.ofType(assignmentType).map((assignment) => assignment.inputs)).toEqual(expect.arrayContaining([
      ...(['ActivityFeed.Read', 'ActivityFeed.ReadDlp', 'ServiceHealth.Read'] as const).map((role) => ({ appRoleId: appRoleIds[role], principalObjectId: userAssigned.objectId, resourceObjectId: resourceServicePrincipalObjectId })),
      ...(['ServiceHealth.Read.All', 'ServiceMessage.Read.All', 'AuditLogsQuery.Read.All'] as const).map((role) => ({ appRoleId: graphAppRoleIds[role], principalObjectId: userAssigned.objectId, resourceObjectId: graphServicePrincipalObjectId })),
    ]));
    expect(run.ofType(assignmentType)).toHaveLength(6);
    expect(run.ofType('azuread:index/servicePrincipalDelegatedPermissionGrant:ServicePrincipalDelegatedPermissionGrant')).toEqual([]);
    const outputs = await shown(run.outputs);
    expect(outputs).toEqual({
      connectorName: 'o365-connector', tenantId, tenantDomain: 'contoso.onmicrosoft.com', clientId: userAssigned.clientId, credential: 'managedIdentity',
      publisherId: tenantId, cloud: 'commercial', authorityHost: 'https://login.microsoftonline.com', apiRoot: 'https://manage.office.com', graphRoot: 'https://graph.microsoft.com',
      contentTypes: ['Audit.AzureActiveDirectory', 'Audit.Exchange', 'Audit.SharePoint', 'Audit.General', 'DLP.All', 'ServiceHealth'], auditSearch: true,
    });
    expect(stackOutputsSchema.strict().safeParse(outputs).error?.issues ?? []).toEqual([]);
  });

  it('leaves the client id out for a system-assigned identity (the host knows it), and grants only the Graph roles of the features that are on', async () => {
    const run: ProgramRun = await runProgram({ credential: 'managedIdentity', managedIdentityPrincipalId: systemAssigned.objectId, serviceHealth: 'false', auditSearch: 'false', permissions: 'ActivityFeed.Read' }, undefined, { principals });
    expect(run.ofType(assignmentType).map((assignment) => assignment.inputs.appRoleId)).toEqual([appRoleIds['ActivityFeed.Read']]);
    const outputs = await shown(run.outputs);
    expect(outputs).not.toHaveProperty('clientId');
    expect(outputs).toMatchObject({ credential: 'managedIdentity', contentTypes: ['Audit.AzureActiveDirectory', 'Audit.Exchange', 'Audit.SharePoint', 'Audit.General'] });
    const { config } = await loadConfig({}, { O365_TENANT_ID: tenantId, O365_CREDENTIAL: 'managedIdentity' });
    expect(config).toMatchObject({ clientId: undefined, credential: { kind: 'managedIdentity' } });
  });

  it('refuses a principal that is not a managed identity, and one that does not exist, in one line', async () => {
    await expect(runProgram({ credential: 'managedIdentity', managedIdentityPrincipalId: 'd1e2f3a4-b5c6-4d7e-8f90-a1b2c3d4e5f6' }, undefined, { principals }))
      .rejects.toThrow(/^o365-connector:managedIdentityPrincipalId: d1e2f3a4-b5c6-4d7e-8f90-a1b2c3d4e5f6 is the service principal of "some app", not a managed identity; use credential secret, certificate or federated for an app$/);
    await expect(runProgram({ credential: 'managedIdentity', managedIdentityPrincipalId: '0a0b0c0d-0e0f-4a1b-8c2d-3e4f5a6b7c8d' }, undefined, { principals }))
      .rejects.toThrow(/^o365-connector:managedIdentityPrincipalId: no service principal 0a0b0c0d-0e0f-4a1b-8c2d-3e4f5a6b7c8d in this tenant; use the identity's principal id/);
  });
});

describe('settings of the credentials without a secret: one line per bad setting', () => {
  it.each([
    [{ credential: 'federated' }, /^o365-connector:federatedIdentities: required when credential is federated/],
    [{ credential: 'federated', federatedIdentities: 'not json' }, /^o365-connector:federatedIdentities: is not a JSON list of \{"issuer","subject"\}/],
    [{ credential: 'federated', federatedIdentities: '[]' }, /^o365-connector:federatedIdentities: is empty: name at least one workload/],
    [{ credential: 'federated', federatedIdentities: JSON.stringify([{ issuer: 'http://oidc.example', subject: 'x' }]) }, /^o365-connector:federatedIdentities: entry 1: issuer "http:\/\/oidc.example" must be an https URL/],
    [{ credential: 'federated', federatedIdentities: JSON.stringify([aks, { issuer: aks.issuer, subject: ' ' }]) }, /^o365-connector:federatedIdentities: entry 2: subject must not be empty/],
    [{ credential: 'federated', federatedIdentities: JSON.stringify([{ ...aks, audiences: ['x'] }]) }, /^o365-connector:federatedIdentities: entry 1 has unknown field "audiences"; use issuer, subject and audience$/],
    [{ credential: 'federated', federatedIdentities: JSON.stringify(Array.from({ length: 21 }, (_, n) => ({ ...aks, subject: `system:serviceaccount:soc:c${n}` }))) }, /^o365-connector:federatedIdentities: has 21 entries; an app holds at most 20 federated identity credentials$/],
    [{ credential: 'federated', federatedIdentities: JSON.stringify([aks, aks]) }, /^o365-connector:federatedIdentities: names issuer .* twice$/],
    [{ federatedIdentities: JSON.stringify([aks]) }, /^o365-connector:federatedIdentities: is set but credential is "secret"; pulumi config set o365-connector:credential federated, or; pulumi config rm/],
    [{ ...federated, keyVault: 'true', keyVaultResourceGroup: 'rg', keyVaultLocation: 'westeurope' }, /^o365-connector:keyVault: holds the client secret, but credential is "federated", which has none; set keyVault false$/],
    [{ ...federated, secretRotation: '2' }, /^o365-connector:secretRotation: is not read when credential is federated: there is no secret/],
    [{ credential: 'managedIdentity' }, /^o365-connector:managedIdentityPrincipalId: required when credential is managedIdentity/],
    [{ credential: 'managedIdentity', managedIdentityPrincipalId: 'id-o365-connector' }, /^o365-connector:managedIdentityPrincipalId: "id-o365-connector" is not an object id \(GUID\)/],
    [{ credential: 'managedIdentity', managedIdentityPrincipalId: userAssigned.objectId, mode: 'home' }, /^o365-connector:credential: managedIdentity registers no app for customer tenants to consent to/],
    [{ managedIdentityPrincipalId: userAssigned.objectId }, /^o365-connector:managedIdentityPrincipalId: is set but credential is "secret"/],
    [{ mode: 'customer', homeStack: homeStackName, federatedIdentities: JSON.stringify([aks]) }, /^o365-connector:federatedIdentities: is not read in a customer stack: the credentials come from the home stack/],
  ])('refuses %j', (settings, line) => {
    const problems = problemsOf(settings as Record<string, string>);
    expect(problems.some((problem) => line.test(problem)), problems.join('\n')).toBe(true);
  });
});
