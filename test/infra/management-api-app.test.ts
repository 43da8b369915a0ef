import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { managementApiAppId, microsoftGraphAppId } from '../../contract/clouds.ts';
import { permissionIds } from '../../infra/management-api-app.ts';
import { runProgram } from './harness.ts';
import { appRoleIds, deployerObjectId, graphAppRoleIds, graphServicePrincipalObjectId, oauth2PermissionScopeIds, resourceServicePrincipalObjectId } from './mocks.ts';

const applicationType = 'azuread:index/application:Application';
const assignmentType = 'azuread:index/appRoleAssignment:AppRoleAssignment';
const grantType = 'azuread:index/servicePrincipalDelegatedPermissionGrant:ServicePrincipalDelegatedPermissionGrant';
const all = ['ActivityFeed.Read', 'ActivityFeed.ReadDlp', 'ServiceHealth.Read'];

/** What the app requests of one resource (the Management API by default; Microsoft Graph with serviceHealth). */
function requested(run: Awaited<ReturnType<typeof runProgram>>, resourceAppId = managementApiAppId): { id: string; type: string }[] {
  const [app] = run.ofType(applicationType);
  const entries = (app!.inputs.requiredResourceAccesses as Array<{ resourceAppId: string; resourceAccesses: { id: string; type: string }[] }>).filter((entry) => entry.resourceAppId === resourceAppId);
  expect(entries.length).toBeLessThanOrEqual(1);
  return entries[0]?.resourceAccesses ?? [];
}

/** The app role assignments on one resource's service principal (the Management API's by default). */
const assignedOn = (run: Awaited<ReturnType<typeof runProgram>>, resourceObjectId = resourceServicePrincipalObjectId) =>
  run.ofType(assignmentType).filter((assignment) => assignment.inputs.resourceObjectId === resourceObjectId);

const roles = (names: string[]) => names.map((name) => ({ id: appRoleIds[name]!, type: 'Role' }));
const scopes = (names: string[]) => names.map((name) => ({ id: oauth2PermissionScopeIds[name]!, type: 'Scope' }));

describe('management API app', () => {
  it('requests every documented permission as Role and as Scope on the Office 365 Management APIs, ids looked up by value', async () => {
    const run = await runProgram();
    expect(requested(run)).toEqual([...roles(all), ...scopes(all)]);
    const lookups = run.calls.filter((call) => call.token === 'azuread:index/getServicePrincipal:getServicePrincipal');
    expect(lookups.map((call) => call.inputs)).toEqual([{ clientId: managementApiAppId }, { clientId: microsoftGraphAppId }]);
    expect(run.ofType(applicationType)[0]!.inputs).toMatchObject({ displayName: 'o365-connector', signInAudience: 'AzureADMyOrg', owners: [deployerObjectId] });
  });

  it('takes the ids from the tenant\'s service principal, whatever they are', async () => {
    const fresh = () => Object.fromEntries(Object.keys(appRoleIds).map((name) => [name, randomUUID()]));
    const published = { appRoleIds: fresh(), oauth2PermissionScopeIds: fresh() };
    const run = await runProgram({}, undefined, { published });
    expect(requested(run)).toEqual([
      ...all.map((name) => ({ id: published.appRoleIds[name]!, type: 'Role' })),
      ...all.map((name) => ({ id: published.oauth2PermissionScopeIds[name]!, type: 'Scope' })),
    ]);
    expect(assignedOn(run).map((assignment) => assignment.inputs.appRoleId)).toEqual(all.map((name) => published.appRoleIds[name]));
  });

  it('fails naming the permission when the tenant\'s service principal does not publish it', () => {
    const { 'ActivityFeed.ReadDlp': _dropped, ...rest } = appRoleIds;
    expect(permissionIds(appRoleIds, all, 'application permission')).toEqual(all.map((name) => appRoleIds[name]));
    expect(() => permissionIds(rest, all, 'application permission')).toThrow(
      'the Office 365 Management APIs service principal (c5393580-f805-4401-95e8-94b7a6ef2fc2) publishes no application permission "ActivityFeed.ReadDlp" in this tenant; check the cloud and that the Office 365 service principal exists',
    );
  });

  it('names the app from config', async () => {
    const run = await runProgram({ displayName: 'Contoso SOC audit collector' });
    expect(run.ofType(applicationType)[0]!.inputs.displayName).toBe('Contoso SOC audit collector');
  });

  it('grants admin consent: one app role assignment per application permission, from the app\'s service principal to the API\'s', async () => {
    const run = await runProgram();
    const [sp] = run.ofType('azuread:index/servicePrincipal:ServicePrincipal');
    expect(sp!.inputs).toMatchObject({ clientId: '3f9a6c2e-8d41-4b7a-9e05-6c1d2b3a4f58', owners: [deployerObjectId] });
    const assignments = assignedOn(run);
    expect(assignments.map((assignment) => assignment.inputs)).toEqual(all.map((name) => ({
      appRoleId: appRoleIds[name],
      principalObjectId: 'sp-object-of-o365-connector',
      resourceObjectId: resourceServicePrincipalObjectId,
    })));
  });

  it('grants the delegated scopes tenant-wide with one delegated permission grant', async () => {
    const grants = (await runProgram()).ofType(grantType);
    expect(grants.map((grant) => grant.inputs)).toEqual([{
      servicePrincipalObjectId: 'sp-object-of-o365-connector',
      resourceServicePrincipalObjectId,
      claimValues: all,
    }]);
  });

  it('requests and consents nothing beyond the configured set when DLP is dropped', async () => {
    const kept = ['ActivityFeed.Read', 'ServiceHealth.Read'];
    const run = await runProgram({ permissions: kept.join(',') });
    expect(requested(run)).toEqual([...roles(kept), ...scopes(kept)]);
    expect(assignedOn(run).map((assignment) => assignment.inputs.appRoleId)).toEqual(kept.map((name) => appRoleIds[name]));
    expect(run.ofType(grantType)[0]!.inputs.claimValues).toEqual(kept);
    expect(JSON.stringify(run.resources)).not.toContain(appRoleIds['ActivityFeed.ReadDlp']);
    expect(JSON.stringify(run.resources)).not.toContain(oauth2PermissionScopeIds['ActivityFeed.ReadDlp']);
  });

  it('requests application permissions only, and grants no delegated consent, when delegatedPermissions is none', async () => {
    const run = await runProgram({ permissions: 'ActivityFeed.Read', delegatedPermissions: 'none' });
    expect(requested(run)).toEqual(roles(['ActivityFeed.Read']));
    expect(run.ofType(grantType)).toEqual([]);
    expect(assignedOn(run)).toHaveLength(1);
  });

  it('never requests the API\'s other roles and scopes', async () => {
    const ids = requested(await runProgram()).map((access) => access.id);
    for (const other of ['ActivityReports.Read', 'ThreatIntelligence.Read']) {
      expect(ids).not.toContain(appRoleIds[other]);
      expect(ids).not.toContain(oauth2PermissionScopeIds[other]);
    }
  });
});

const graphRoles = ['ServiceHealth.Read.All', 'ServiceMessage.Read.All'];
/** Service health's Graph permissions on their own (the audit search's are tested in audit-search.test.ts). */
const withoutAuditSearch = { auditSearch: 'false' };

describe('service health from Microsoft Graph (config serviceHealth)', () => {
  it('by default also requests ServiceHealth.Read.All and ServiceMessage.Read.All on Microsoft Graph, ids looked up by value, with admin consent', async () => {
    const run = await runProgram(withoutAuditSearch);
    expect(requested(run, microsoftGraphAppId)).toEqual(graphRoles.map((name) => ({ id: graphAppRoleIds[name]!, type: 'Role' })));
    expect(assignedOn(run, graphServicePrincipalObjectId).map((assignment) => assignment.inputs)).toEqual(graphRoles.map((name) => ({
      appRoleId: graphAppRoleIds[name], principalObjectId: 'sp-object-of-o365-connector', resourceObjectId: graphServicePrincipalObjectId,
    })));
    // The Management API's ServiceHealth.Read stays requested, as the documented setup asks for it.
    expect(requested(run).map((access) => access.id)).toContain(appRoleIds['ServiceHealth.Read']);
    // No delegated Graph scope, and none of Graph's other roles.
    expect(JSON.stringify(run.resources)).not.toContain(graphAppRoleIds['Directory.Read.All']);
    expect(JSON.stringify(run.resources)).not.toContain(graphAppRoleIds['AuditLog.Read.All']);
  });

  it('takes the Graph role ids from the tenant\'s Graph service principal, whatever they are', async () => {
    const graphPublished = { 'ServiceHealth.Read.All': randomUUID(), 'ServiceMessage.Read.All': randomUUID() };
    const run = await runProgram(withoutAuditSearch, undefined, { graphPublished });
    expect(requested(run, microsoftGraphAppId).map((access) => access.id)).toEqual(graphRoles.map((name) => graphPublished[name as keyof typeof graphPublished]));
    expect(assignedOn(run, graphServicePrincipalObjectId).map((assignment) => assignment.inputs.appRoleId)).toEqual(graphRoles.map((name) => graphPublished[name as keyof typeof graphPublished]));
  });

  it('fails naming the Graph permission when the tenant\'s Graph service principal does not publish it', () => {
    expect(() => permissionIds({ 'ServiceHealth.Read.All': randomUUID() }, graphRoles, 'application permission', 'graph')).toThrow(
      'the Microsoft Graph service principal (00000003-0000-0000-c000-000000000000) publishes no application permission "ServiceMessage.Read.All" in this tenant; check the cloud, or set o365-connector:serviceHealth false',
    );
  });

  it('off (and auditSearch off), requests and consents nothing of Microsoft Graph, and does not even look it up', async () => {
    const run = await runProgram({ serviceHealth: 'false', ...withoutAuditSearch });
    const [app] = run.ofType(applicationType);
    expect(app!.inputs.requiredResourceAccesses.map((entry: { resourceAppId: string }) => entry.resourceAppId)).toEqual([managementApiAppId]);
    expect(assignedOn(run, graphServicePrincipalObjectId)).toEqual([]);
    expect(run.calls.filter((call) => call.inputs.clientId === microsoftGraphAppId)).toEqual([]);
    expect(requested(run)).toEqual([...roles(all), ...scopes(all)]);
  });
});
