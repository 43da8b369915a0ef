import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { managementApiAppId } from '../../connector/config/clouds.ts';
import { permissionIds } from '../../infra/management-api-app.ts';
import { runProgram } from './harness.ts';
import { appRoleIds, deployerObjectId, oauth2PermissionScopeIds, resourceServicePrincipalObjectId } from './mocks.ts';

const applicationType = 'azuread:index/application:Application';
const assignmentType = 'azuread:index/appRoleAssignment:AppRoleAssignment';
const grantType = 'azuread:index/servicePrincipalDelegatedPermissionGrant:ServicePrincipalDelegatedPermissionGrant';
const all = ['ActivityFeed.Read', 'ActivityFeed.ReadDlp', 'ServiceHealth.Read'];

function requested(run: Awaited<ReturnType<typeof runProgram>>): { id: string; type: string }[] {
  const [app] = run.ofType(applicationType);
  expect(app!.inputs.requiredResourceAccesses).toHaveLength(1);
  expect(app!.inputs.requiredResourceAccesses[0].resourceAppId).toBe(managementApiAppId);
  return app!.inputs.requiredResourceAccesses[0].resourceAccesses;
}

const roles = (names: string[]) => names.map((name) => ({ id: appRoleIds[name]!, type: 'Role' }));
const scopes = (names: string[]) => names.map((name) => ({ id: oauth2PermissionScopeIds[name]!, type: 'Scope' }));

describe('management API app', () => {
  it('requests every documented permission as Role and as Scope on the Office 365 Management APIs, ids looked up by value', async () => {
    const run = await runProgram();
    expect(requested(run)).toEqual([...roles(all), ...scopes(all)]);
    const lookups = run.calls.filter((call) => call.token === 'azuread:index/getServicePrincipal:getServicePrincipal');
    expect(lookups.map((call) => call.inputs)).toEqual([{ clientId: managementApiAppId }]);
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
    expect(run.ofType(assignmentType).map((assignment) => assignment.inputs.appRoleId)).toEqual(all.map((name) => published.appRoleIds[name]));
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
    const assignments = run.ofType(assignmentType);
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
    expect(run.ofType(assignmentType).map((assignment) => assignment.inputs.appRoleId)).toEqual(kept.map((name) => appRoleIds[name]));
    expect(run.ofType(grantType)[0]!.inputs.claimValues).toEqual(kept);
    expect(JSON.stringify(run.resources)).not.toContain(appRoleIds['ActivityFeed.ReadDlp']);
    expect(JSON.stringify(run.resources)).not.toContain(oauth2PermissionScopeIds['ActivityFeed.ReadDlp']);
  });

  it('requests application permissions only, and grants no delegated consent, when delegatedPermissions is none', async () => {
    const run = await runProgram({ permissions: 'ActivityFeed.Read', delegatedPermissions: 'none' });
    expect(requested(run)).toEqual(roles(['ActivityFeed.Read']));
    expect(run.ofType(grantType)).toEqual([]);
    expect(run.ofType(assignmentType)).toHaveLength(1);
  });

  it('never requests the API\'s other roles and scopes', async () => {
    const ids = requested(await runProgram()).map((access) => access.id);
    for (const other of ['ActivityReports.Read', 'ThreatIntelligence.Read']) {
      expect(ids).not.toContain(appRoleIds[other]);
      expect(ids).not.toContain(oauth2PermissionScopeIds[other]);
    }
  });
});
