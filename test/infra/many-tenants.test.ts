import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as pulumi from '@pulumi/pulumi';
import { loadConfig } from '../../connector/config/config.ts';
import { managementApiAppId, microsoftGraphAppId } from '../../contract/clouds.ts';
import { stackOutputsSchema } from '../../contract/stack-outputs.ts';
import { homeOutputsSchema, type HomeStackOutputs } from '../../infra/home-stack.ts';
import { selfSignedCertificate } from './certificates.ts';
import { runProgram, type ProgramRun, type World } from './harness.ts';
import {
  appClientId, appRoleIds, customerTenant, deployerObjectId, graphAppRoleIds, graphServicePrincipalObjectId, homeOutputs, homeStackName, oauth2PermissionScopeIds, resourceServicePrincipalObjectId, tenantId, valueOf,
} from './mocks.ts';

const applicationType = 'azuread:index/application:Application';
const servicePrincipalType = 'azuread:index/servicePrincipal:ServicePrincipal';
const assignmentType = 'azuread:index/appRoleAssignment:AppRoleAssignment';
const grantType = 'azuread:index/servicePrincipalDelegatedPermissionGrant:ServicePrincipalDelegatedPermissionGrant';
const passwordType = 'azuread:index/applicationPassword:ApplicationPassword';
const all = ['ActivityFeed.Read', 'ActivityFeed.ReadDlp', 'ServiceHealth.Read'];

/** What `pulumi stack output --json --show-secrets` would print for this run. */
async function shown(outputs: object): Promise<Record<string, unknown>> {
  const entries = await Promise.all(Object.entries(outputs).map(async ([key, output]) => [key, await valueOf(output as pulumi.Output<unknown>)] as const));
  return Object.fromEntries(entries);
}

const customer = { mode: 'customer', homeStack: homeStackName, 'azuread:tenantId': customerTenant.tenantId };
/** Signed in to the customer tenant, the home stack readable. */
const inCustomerTenant = (world: World = {}): World => ({ tenant: customerTenant, ...world });
const azureResources = (run: ProgramRun) => run.resources.filter((resource) => resource.type.startsWith('azuread:') || resource.type.startsWith('azure-native:'));

const scratch = await mkdtemp(join(tmpdir(), 'o365-tenants-'));
afterAll(() => rm(scratch, { recursive: true, force: true }));

describe('home stack: one multi-tenant app in the provider\'s tenant', () => {
  it('registers the app as multi-tenant with exactly the configured permissions, and consents to nothing in its own tenant', async () => {
    const run = await runProgram({ mode: 'home', permissions: 'ActivityFeed.Read,ServiceHealth.Read', delegatedPermissions: 'none' });
    const [app] = run.ofType(applicationType);
    expect(app!.inputs).toMatchObject({ signInAudience: 'AzureADMultipleOrgs', displayName: 'o365-connector', owners: [deployerObjectId] });
    expect(app!.inputs.requiredResourceAccesses).toEqual([{
      resourceAppId: managementApiAppId,
      resourceAccesses: [{ id: appRoleIds['ActivityFeed.Read'], type: 'Role' }, { id: appRoleIds['ServiceHealth.Read'], type: 'Role' }],
    }, {
      resourceAppId: microsoftGraphAppId,
      resourceAccesses: [{ id: graphAppRoleIds['ServiceHealth.Read.All'], type: 'Role' }, { id: graphAppRoleIds['ServiceMessage.Read.All'], type: 'Role' }, { id: graphAppRoleIds['AuditLogsQuery.Read.All'], type: 'Role' }],
    }]);
    expect([...run.ofType(servicePrincipalType), ...run.ofType(assignmentType), ...run.ofType(grantType)]).toEqual([]);
  });

  it('requests both roles and scopes by default, as a single stack does', async () => {
    const run = await runProgram({ mode: 'home' });
    expect(run.ofType(applicationType)[0]!.inputs.requiredResourceAccesses[0].resourceAccesses).toEqual([
      ...all.map((name) => ({ id: appRoleIds[name], type: 'Role' })),
      ...all.map((name) => ({ id: oauth2PermissionScopeIds[name], type: 'Scope' })),
    ]);
  });

  it('exports what customer stacks read: the app, its current secret (a secret), the permissions and the admin-consent URL', async () => {
    const run = await runProgram<HomeStackOutputs>({ mode: 'home', displayName: 'Acme MSSP audit collector', secretRotation: '3' });
    const outputs = await shown(run.outputs);
    expect(outputs).toEqual({
      mode: 'home',
      connectorName: 'Acme MSSP audit collector',
      clientId: appClientId,
      credential: 'secret',
      clientSecret: 'value-of-o365-connector-secret-3',
      clientSecretExpiry: '2027-05-24T00:00:00Z',
      cloud: 'commercial',
      homeTenantId: tenantId,
      permissions: all,
      delegatedPermissions: all,
      graphPermissions: ['ServiceHealth.Read.All', 'ServiceMessage.Read.All', 'AuditLogsQuery.Read.All'],
      adminConsentUrl: `https://login.microsoftonline.com/organizations/adminconsent?client_id=${appClientId}`,
    });
    expect(homeOutputsSchema.strict().safeParse(outputs).error?.issues ?? []).toEqual([]);
    for (const [key, output] of Object.entries(run.outputs)) {
      expect([key, await pulumi.isSecret(output as pulumi.Output<unknown>)]).toEqual([key, key === 'clientSecret']);
    }
    // Rotation as in a single stack: the previous generation stays valid while customers pick up the new one.
    expect(run.ofType(passwordType).map((password) => password.name)).toEqual(['o365-connector-secret-2', 'o365-connector-secret-3']);
  });

  it('keeps the optional certificate, and points the consent URL at its cloud', async () => {
    const { certPem } = await selfSignedCertificate({ notBefore: new Date('2026-01-01T00:00:00Z'), notAfter: new Date('2028-01-01T00:00:00Z') });
    const run = await runProgram<HomeStackOutputs>({ mode: 'home', cloud: 'gcchigh', credential: 'certificate', certificatePem: certPem });
    const outputs = await shown(run.outputs);
    expect(outputs).toMatchObject({ certificateKeyId: 'key-of-o365-connector-certificate', cloud: 'gcchigh' });
    expect(outputs['adminConsentUrl']).toBe(`https://login.microsoftonline.us/organizations/adminconsent?client_id=${appClientId}`);
    expect('clientSecret' in outputs).toBe(false);
    expect(run.ofType('pulumi:providers:azuread')[0]!.inputs.environment).toBe('usgovernmentl4');
  });
});

describe('customer stack, consent granted by the stack', () => {
  it('creates one service principal of the home app and one assignment per application role on the customer\'s Office 365 Management APIs principal', async () => {
    const run = await runProgram(customer, undefined, inCustomerTenant());
    expect(run.ofType(applicationType)).toEqual([]);
    expect(run.ofType(passwordType)).toEqual([]);
    const principals = run.ofType(servicePrincipalType);
    expect(principals.map((principal) => principal.inputs)).toEqual([{ clientId: appClientId, appRoleAssignmentRequired: false, useExisting: true }]);
    expect(run.ofType(assignmentType).map((assignment) => assignment.inputs)).toEqual(all.map((name) => ({
      appRoleId: appRoleIds[name], principalObjectId: 'sp-object-of-o365-connector', resourceObjectId: resourceServicePrincipalObjectId,
    })));
    expect(run.ofType(grantType).map((grant) => grant.inputs)).toEqual([{
      servicePrincipalObjectId: 'sp-object-of-o365-connector', resourceServicePrincipalObjectId, claimValues: all,
    }]);
    const lookups = run.calls.filter((call) => call.token === 'azuread:index/getServicePrincipal:getServicePrincipal');
    expect(lookups.map((call) => call.inputs)).toEqual([{ clientId: managementApiAppId }]);
    expect(run.ofType('pulumi:pulumi:StackReference').map((reference) => reference.inputs.name)).toEqual([homeStackName]);
    expect(run.ofType('pulumi:providers:azuread')[0]!.inputs).toMatchObject({ tenantId: customerTenant.tenantId, environment: 'global' });
  });

  it('grants exactly the home app\'s permissions: no DLP role, no delegated grant when the home stack requests none', async () => {
    const stacks = { [homeStackName]: { ...homeOutputs, permissions: ['ActivityFeed.Read', 'ServiceHealth.Read'], delegatedPermissions: [] } };
    const run = await runProgram(customer, undefined, inCustomerTenant({ stacks }));
    expect(run.ofType(assignmentType).map((assignment) => assignment.inputs.appRoleId)).toEqual([appRoleIds['ActivityFeed.Read'], appRoleIds['ServiceHealth.Read']]);
    expect(run.ofType(grantType)).toEqual([]);
    expect(await valueOf(run.outputs.contentTypes)).toEqual(['Audit.AzureActiveDirectory', 'Audit.Exchange', 'Audit.SharePoint', 'Audit.General']);
  });

  it('consents the home app\'s Graph permissions on the customer\'s Microsoft Graph principal, and exports ServiceHealth and the Graph root', async () => {
    const stacks = { [homeStackName]: { ...homeOutputs, graphPermissions: ['ServiceHealth.Read.All', 'ServiceMessage.Read.All'] } };
    const run = await runProgram(customer, undefined, inCustomerTenant({ stacks }));
    expect(run.ofType(assignmentType).filter((assignment) => assignment.inputs.resourceObjectId === graphServicePrincipalObjectId).map((assignment) => assignment.inputs)).toEqual(
      ['ServiceHealth.Read.All', 'ServiceMessage.Read.All'].map((name) => ({ appRoleId: graphAppRoleIds[name], principalObjectId: 'sp-object-of-o365-connector', resourceObjectId: graphServicePrincipalObjectId })),
    );
    expect(await valueOf(run.outputs.contentTypes)).toEqual(['Audit.AzureActiveDirectory', 'Audit.Exchange', 'Audit.SharePoint', 'Audit.General', 'DLP.All', 'ServiceHealth']);
    expect(await valueOf(run.outputs.graphRoot!)).toBe('https://graph.microsoft.com');
  });

  it('exports the full outputs set of the customer tenant, its secret taken from the home stack', async () => {
    const run = await runProgram(customer, undefined, inCustomerTenant());
    const outputs = await shown(run.outputs);
    expect(outputs).toEqual({
      connectorName: 'Acme MSSP audit collector',
      tenantId: customerTenant.tenantId,
      tenantDomain: customerTenant.initialDomain,
      clientId: appClientId,
      credential: 'secret',
      clientSecret: 'home-secret-generation-3',
      clientSecretExpiry: '2027-05-24T00:00:00Z',
      publisherId: customerTenant.tenantId,
      cloud: 'commercial',
      authorityHost: 'https://login.microsoftonline.com',
      apiRoot: 'https://manage.office.com',
      contentTypes: ['Audit.AzureActiveDirectory', 'Audit.Exchange', 'Audit.SharePoint', 'Audit.General', 'DLP.All'],
      // This home stack's app requests no Graph permission.
      auditSearch: false,
    });
    const parsed = stackOutputsSchema.strict().safeParse(outputs);
    expect(parsed.error?.issues ?? []).toEqual([]);
    for (const [key, output] of Object.entries(run.outputs)) {
      expect([key, await pulumi.isSecret(output as pulumi.Output<unknown>)]).toEqual([key, key === 'clientSecret']);
    }
  });

  it('writes an outputs file the connector reads as that tenant\'s configuration (one file per tenant in --tenants)', async () => {
    const run = await runProgram(customer, undefined, inCustomerTenant());
    const file = join(scratch, 'fabrikam.json');
    await writeFile(file, JSON.stringify(await shown(run.outputs), null, 2), { mode: 0o600 });
    const { config } = await loadConfig({ outputs: file }, {});
    expect(config).toMatchObject({
      tenantId: customerTenant.tenantId, publisherId: customerTenant.tenantId, clientId: appClientId,
      credential: { kind: 'secret', secret: 'home-secret-generation-3' },
    });
  });

  it('hands out the home stack\'s rotated secret on its next pulumi up, and changes no resource for it', async () => {
    const before = await runProgram(customer, undefined, inCustomerTenant());
    const rotated = { [homeStackName]: { ...homeOutputs, clientSecret: 'home-secret-generation-4', clientSecretExpiry: '2027-08-22T00:00:00Z' } };
    const after = await runProgram(customer, undefined, inCustomerTenant({ stacks: rotated }));
    expect(await valueOf(after.outputs.clientSecret!)).toBe('home-secret-generation-4');
    expect(await valueOf(after.outputs.clientSecretExpiry!)).toBe('2027-08-22T00:00:00Z');
    expect(azureResources(after).map((r) => [r.type, r.name, r.inputs])).toEqual(azureResources(before).map((r) => [r.type, r.name, r.inputs]));
  });

  it('exports the certificate key id, and no secret, when the home app has only a certificate', async () => {
    const { clientSecret: _secret, clientSecretExpiry: _expiry, ...certificateOnly } = homeOutputs;
    const stacks = { [homeStackName]: { ...certificateOnly, certificateKeyId: 'key-of-o365-connector-certificate' } };
    const outputs = await shown((await runProgram(customer, undefined, inCustomerTenant({ stacks }))).outputs);
    expect(outputs['certificateKeyId']).toBe('key-of-o365-connector-certificate');
    expect('clientSecret' in outputs).toBe(false);
    expect(stackOutputsSchema.strict().safeParse(outputs).error?.issues ?? []).toEqual([]);
  });

  it('serves a GCC tenant from a commercial home stack (one Entra ID cloud), with the GCC endpoints', async () => {
    const run = await runProgram({ ...customer, cloud: 'gcc' }, undefined, inCustomerTenant());
    expect(await valueOf(run.outputs.apiRoot)).toBe('https://manage-gcc.office.com');
    expect(await valueOf(run.outputs.cloud)).toBe('gcc');
  });

  it('refuses a home stack of another cloud, with one line', async () => {
    const stacks = { [homeStackName]: { ...homeOutputs, cloud: 'gcchigh' } };
    await expect(runProgram(customer, undefined, inCustomerTenant({ stacks }))).rejects.toThrow(
      /^o365-connector:homeStack: acme\/o365-connector\/home registered its app in the gcchigh cloud, but this stack's cloud is commercial; a multi-tenant app works only within one cloud: pulumi config set o365-connector:cloud gcchigh$/,
    );
  });

  it('refuses a stack that is not a home stack (a single stack\'s single-tenant app), with one line', async () => {
    const { mode: _mode, ...single } = homeOutputs;
    await expect(runProgram(customer, undefined, inCustomerTenant({ stacks: { [homeStackName]: single } }))).rejects.toThrow(
      /^o365-connector:homeStack: acme\/o365-connector\/home is not a home stack \(its app is not multi-tenant\): set o365-connector:mode home on it and run pulumi up there, or name the home stack$/,
    );
  });

  it('says a home stack with no outputs is not deployed yet, with one line', async () => {
    await expect(runProgram(customer, undefined, inCustomerTenant({ stacks: { [homeStackName]: {} } }))).rejects.toThrow(
      /^o365-connector:homeStack: acme\/o365-connector\/home has no outputs; run pulumi up on it first$/,
    );
  });

  it('names the output a home stack lacks', async () => {
    const { adminConsentUrl: _url, ...older } = homeOutputs;
    await expect(runProgram(customer, undefined, inCustomerTenant({ stacks: { [homeStackName]: older } }))).rejects.toThrow(
      /^o365-connector:homeStack: acme\/o365-connector\/home exports no usable adminConsentUrl \(is missing\); run pulumi up on the home stack with this version of the program$/,
    );
  });
});

describe('customer stack, consent verified only (the customer\'s own admin approves)', () => {
  const verify = { ...customer, consent: 'verify' };

  it('creates nothing and exports the full outputs set when the app holds every permission', async () => {
    const run = await runProgram(verify, undefined, inCustomerTenant({ appServicePrincipal: true, grantedRoles: all }));
    expect(azureResources(run)).toEqual([]);
    const outputs = await shown(run.outputs);
    expect(outputs).toMatchObject({ tenantId: customerTenant.tenantId, publisherId: customerTenant.tenantId, clientSecret: 'home-secret-generation-3' });
    expect(stackOutputsSchema.strict().safeParse(outputs).error?.issues ?? []).toEqual([]);
    // The check asks the identity platform for the app's token in the customer tenant, with the home stack's secret.
    expect(run.tokenRequests).toEqual([{
      authorityHost: 'https://login.microsoftonline.com', apiRoot: 'https://manage.office.com', tenantId: customerTenant.tenantId, clientId: appClientId, clientSecret: 'home-secret-generation-3',
    }]);
  });

  it('fails with one line naming every permission and the tenant\'s admin-consent URL when nobody consented', async () => {
    await expect(runProgram(verify, undefined, inCustomerTenant({ appServicePrincipal: false }))).rejects.toThrow(new RegExp(`^${[
      'o365-connector:consent: fabrikam.onmicrosoft.com \\(7d1e4c2a-5b6f-4a8e-9c0d-1e2f3a4b5c6d\\) has not granted Acme MSSP audit collector \\(3f9a6c2e-8d41-4b7a-9e05-6c1d2b3a4f58\\) ActivityFeed.Read, ActivityFeed.ReadDlp, ServiceHealth.Read; ',
      'a Global Administrator of fabrikam.onmicrosoft.com opens https://login.microsoftonline.com/7d1e4c2a-5b6f-4a8e-9c0d-1e2f3a4b5c6d/adminconsent\\?client_id=3f9a6c2e-8d41-4b7a-9e05-6c1d2b3a4f58 and approves, then run pulumi up again$',
    ].join('')}`));
  });

  it('names only the permission that is missing when the consent is partial', async () => {
    await expect(runProgram(verify, undefined, inCustomerTenant({ appServicePrincipal: true, grantedRoles: ['ActivityFeed.Read', 'ServiceHealth.Read'] }))).rejects.toThrow(
      /has not granted Acme MSSP audit collector \(3f9a6c2e-8d41-4b7a-9e05-6c1d2b3a4f58\) ActivityFeed\.ReadDlp; a Global Administrator/,
    );
  });

  it('checks the home app\'s Graph permissions in a token for the cloud\'s Microsoft Graph, naming any that is missing', async () => {
    const graph = ['ServiceHealth.Read.All', 'ServiceMessage.Read.All'];
    const stacks = { [homeStackName]: { ...homeOutputs, graphPermissions: graph } };
    await expect(runProgram(verify, undefined, inCustomerTenant({ stacks, appServicePrincipal: true, grantedRoles: all }))).rejects.toThrow(
      /has not granted Acme MSSP audit collector \(3f9a6c2e-8d41-4b7a-9e05-6c1d2b3a4f58\) Microsoft Graph ServiceHealth\.Read\.All, Microsoft Graph ServiceMessage\.Read\.All; a Global Administrator/,
    );
    const run = await runProgram(verify, undefined, inCustomerTenant({ stacks, appServicePrincipal: true, grantedRoles: [...all, ...graph] }));
    expect(run.tokenRequests.map((request) => request.apiRoot)).toEqual(['https://manage.office.com', 'https://graph.microsoft.com']);
    expect(await valueOf(run.outputs.contentTypes)).toContain('ServiceHealth');
  });

  it('treats an app the identity platform does not know in the tenant as no consent at all', async () => {
    await expect(runProgram(verify, undefined, inCustomerTenant({ appServicePrincipal: true, grantedRoles: undefined }))).rejects.toThrow(
      /has not granted Acme MSSP audit collector \(3f9a6c2e-8d41-4b7a-9e05-6c1d2b3a4f58\) ActivityFeed\.Read, ActivityFeed\.ReadDlp, ServiceHealth\.Read;/,
    );
  });
});
