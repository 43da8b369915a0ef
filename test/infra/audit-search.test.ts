// The stack setting auditSearch: the Graph application permission AuditLogsQuery.Read.All (history beyond the
// Management Activity API's 7 days, from the audit search), requested and consented in single, home and customer
// stacks, checked by verify-only customer stacks, and said in the outputs.
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import * as pulumi from '@pulumi/pulumi';
import { cloudNames, clouds, graphAuditSearchPermission, microsoftGraphAppId } from '../../contract/clouds.ts';
import { stackOutputsSchema } from '../../contract/stack-outputs.ts';
import { InfraConfigError, readConfig } from '../../infra/config.ts';
import type { HomeStackOutputs } from '../../infra/home-stack.ts';
import { permissionIds } from '../../infra/management-api-app.ts';
import { defaultNow, runProgram, stackSettings, type ProgramRun, type World } from './harness.ts';
import { appClientId, customerTenant, graphAppRoleIds, graphServicePrincipalObjectId, homeOutputs, homeStackName, valueOf } from './mocks.ts';

const applicationType = 'azuread:index/application:Application';
const assignmentType = 'azuread:index/appRoleAssignment:AppRoleAssignment';
const auditRoleId = graphAppRoleIds[graphAuditSearchPermission]!;
const serviceHealthRoles = ['ServiceHealth.Read.All', 'ServiceMessage.Read.All'];
const allGraph = [...serviceHealthRoles, graphAuditSearchPermission];
const management = ['ActivityFeed.Read', 'ActivityFeed.ReadDlp', 'ServiceHealth.Read'];

/** The stack's config read as `pulumi up` reads it; the problems' lines when it is refused. */
function configOf(settings: Record<string, string>): ReturnType<typeof readConfig> | string[] {
  pulumi.runtime.setAllConfig(stackSettings(settings));
  try {
    return readConfig(undefined, defaultNow);
  } catch (error) {
    if (error instanceof InfraConfigError) return error.message.split('\n');
    throw error;
  }
}

/** The ids the app registration requests of Microsoft Graph, as application permissions. */
function graphRequested(run: ProgramRun<ProgramRun['outputs'] | HomeStackOutputs>): { id: string; type: string }[] {
  const [app] = run.ofType(applicationType);
  const entries = (app!.inputs.requiredResourceAccesses as { resourceAppId: string; resourceAccesses: { id: string; type: string }[] }[]);
  return entries.find((entry) => entry.resourceAppId === microsoftGraphAppId)?.resourceAccesses ?? [];
}

const graphConsents = (run: ProgramRun<ProgramRun['outputs'] | HomeStackOutputs>) =>
  run.ofType(assignmentType).filter((assignment) => assignment.inputs.resourceObjectId === graphServicePrincipalObjectId).map((assignment) => assignment.inputs);

/** What `pulumi stack output --json --show-secrets` would print. */
async function shown(outputs: object): Promise<Record<string, unknown>> {
  const entries = await Promise.all(Object.entries(outputs).map(async ([key, output]) => [key, await valueOf(output as pulumi.Output<unknown>)] as const));
  return Object.fromEntries(entries);
}

describe('stack setting auditSearch', () => {
  it.each(cloudNames.map((cloud) => [cloud, clouds[cloud].auditSearch] as const))('defaults in %s to %s: on where Microsoft Graph has the audit search', (cloud, on) => {
    expect(configOf({ cloud })).toMatchObject({ auditSearch: on });
    expect(configOf({ cloud, mode: 'home' })).toMatchObject({ auditSearch: on });
  });

  it('is on by default in exactly the commercial and GCC clouds', () => {
    expect(cloudNames.filter((cloud) => clouds[cloud].auditSearch)).toEqual(['commercial', 'gcc']);
  });

  it.each(['gcchigh', 'dod', 'china'])('is refused with one line naming the setting and the fix when set true for %s', (cloud) => {
    for (const mode of ['single', 'home']) {
      expect(configOf({ cloud, mode, auditSearch: 'true' })).toEqual([
        `o365-connector:auditSearch: the audit search (Microsoft Graph's audit log query API, history beyond 7 days) does not exist in the ${cloud} cloud; pulumi config rm o365-connector:auditSearch`,
      ]);
    }
    expect(configOf({ cloud, auditSearch: 'false' })).toMatchObject({ auditSearch: false });
  });

  it('can be turned off where it is on, and takes only true or false', () => {
    expect(configOf({ auditSearch: 'false' })).toMatchObject({ auditSearch: false, serviceHealth: true });
    expect(configOf({ cloud: 'gcc', auditSearch: 'true' })).toMatchObject({ auditSearch: true });
    expect(configOf({ auditSearch: 'yes' })).toEqual(['o365-connector:auditSearch: "yes" is not true or false; pulumi config set o365-connector:auditSearch true']);
  });

  it('is not read in a customer stack, whose home stack\'s app requests the permission', () => {
    expect(configOf({ mode: 'customer', homeStack: homeStackName, auditSearch: 'true' })).toEqual([
      'o365-connector:auditSearch: is not read in a customer stack: the Graph permissions are the home stack\'s app\'s; pulumi config rm o365-connector:auditSearch',
    ]);
  });
});

describe('single stack with auditSearch', () => {
  it('requests AuditLogsQuery.Read.All on Microsoft Graph, its id looked up by value, with admin consent, and says so in the outputs', async () => {
    const run = await runProgram();
    expect(graphRequested(run)).toEqual(allGraph.map((name) => ({ id: graphAppRoleIds[name], type: 'Role' })));
    expect(graphConsents(run)).toContainEqual({ appRoleId: auditRoleId, principalObjectId: 'sp-object-of-o365-connector', resourceObjectId: graphServicePrincipalObjectId });
    expect(run.calls.filter((call) => call.inputs.clientId === microsoftGraphAppId)).toHaveLength(1);
    expect(await valueOf(run.outputs.auditSearch!)).toBe(true);
    expect(await pulumi.isSecret(run.outputs.auditSearch!)).toBe(false);
  });

  it('takes the role id from the tenant\'s Graph service principal, whatever it is', async () => {
    const graphPublished = Object.fromEntries(allGraph.map((name) => [name, randomUUID()]));
    const run = await runProgram({}, undefined, { graphPublished });
    expect(graphRequested(run).map((access) => access.id)).toEqual(allGraph.map((name) => graphPublished[name]));
    expect(graphConsents(run).map((consent) => consent.appRoleId)).toEqual(allGraph.map((name) => graphPublished[name]));
    expect(JSON.stringify(run.resources)).not.toContain(auditRoleId);
  });

  it('fails naming the permission and the setting when the tenant\'s Graph service principal does not publish it', () => {
    const { [graphAuditSearchPermission]: _missing, ...older } = graphAppRoleIds;
    expect(() => permissionIds(older, allGraph, 'application permission', 'graph')).toThrow(
      'the Microsoft Graph service principal (00000003-0000-0000-c000-000000000000) publishes no application permission "AuditLogsQuery.Read.All" in this tenant; check the cloud, or set o365-connector:auditSearch false',
    );
  });

  it('on its own (serviceHealth off) requests only it of Graph, exports the Graph root and no ServiceHealth', async () => {
    const run = await runProgram({ serviceHealth: 'false' });
    expect(graphRequested(run)).toEqual([{ id: auditRoleId, type: 'Role' }]);
    expect(graphConsents(run).map((consent) => consent.appRoleId)).toEqual([auditRoleId]);
    expect(await valueOf(run.outputs.graphRoot!)).toBe('https://graph.microsoft.com');
    expect(await valueOf(run.outputs.contentTypes)).not.toContain('ServiceHealth');
    expect(await valueOf(run.outputs.auditSearch!)).toBe(true);
  });

  it('off, declares exactly what it declares on minus the permission and its consent, and exports auditSearch false', async () => {
    const on = await runProgram();
    const off = await runProgram({ auditSearch: 'false' });
    const withoutAuditSearch = on.resources
      .filter((resource) => !resource.name.endsWith(graphAuditSearchPermission))
      .map((resource) => resource.type !== applicationType ? resource : {
        ...resource,
        inputs: {
          ...resource.inputs,
          requiredResourceAccesses: resource.inputs.requiredResourceAccesses.map((entry: { resourceAccesses: { id: string }[] }) => ({
            ...entry, resourceAccesses: entry.resourceAccesses.filter((access) => access.id !== auditRoleId),
          })),
        },
      });
    expect(off.resources).toEqual(withoutAuditSearch);
    expect(off.resources.length).toBe(on.resources.length - 1);
    expect(JSON.stringify(off.resources)).not.toContain(auditRoleId);
    expect(graphRequested(off).map((access) => access.id)).toEqual(serviceHealthRoles.map((name) => graphAppRoleIds[name]));
    expect(await shown(off.outputs)).toEqual({ ...(await shown(on.outputs)), auditSearch: false });
  });

  it.each(['gcchigh', 'dod', 'china'])('in %s neither requests nor looks up the permission, and exports auditSearch false', async (cloud) => {
    const run = await runProgram({ cloud });
    expect(graphRequested(run).map((access) => access.id)).toEqual(serviceHealthRoles.map((name) => graphAppRoleIds[name]));
    expect(JSON.stringify(run.resources)).not.toContain(auditRoleId);
    expect(await valueOf(run.outputs.auditSearch!)).toBe(false);
  });

  it.each([['on', {}], ['off', { auditSearch: 'false' }], ['on its own', { serviceHealth: 'false' }]])('writes outputs the stack-outputs contract accepts (%s)', async (_name, settings: Record<string, string>) => {
    const outputs = await shown((await runProgram(settings)).outputs);
    const parsed = stackOutputsSchema.strict().safeParse(outputs);
    expect(parsed.error?.issues ?? []).toEqual([]);
    expect(parsed.data?.auditSearch).toBe(settings['auditSearch'] !== 'false');
  });
});

describe('home stack with auditSearch', () => {
  it('requests the permission on the multi-tenant app, consents nothing in its own tenant, and exports it for the customer stacks', async () => {
    const run = await runProgram<HomeStackOutputs>({ mode: 'home' });
    expect(graphRequested(run)).toEqual(allGraph.map((name) => ({ id: graphAppRoleIds[name], type: 'Role' })));
    expect(run.ofType(assignmentType)).toEqual([]);
    expect(await valueOf(run.outputs.graphPermissions!)).toEqual(allGraph);
  });

  it('off, exports only service health\'s Graph permissions', async () => {
    const run = await runProgram<HomeStackOutputs>({ mode: 'home', auditSearch: 'false' });
    expect(await valueOf(run.outputs.graphPermissions!)).toEqual(serviceHealthRoles);
    expect(JSON.stringify(run.resources)).not.toContain(auditRoleId);
  });
});

const customer = { mode: 'customer', homeStack: homeStackName, 'azuread:tenantId': customerTenant.tenantId };
const homeWith = (graphPermissions: string[]) => ({ [homeStackName]: { ...homeOutputs, graphPermissions } });
const inCustomerTenant = (world: World): World => ({ tenant: customerTenant, ...world });

describe('customer stack, consent granted by the stack', () => {
  it('consents AuditLogsQuery.Read.All on the customer\'s Microsoft Graph principal, looked up there by value, and exports auditSearch true', async () => {
    const graphPublished: Record<string, string> = { ...graphAppRoleIds, [graphAuditSearchPermission]: randomUUID() };
    const run = await runProgram(customer, undefined, inCustomerTenant({ stacks: homeWith(allGraph), graphPublished }));
    expect(graphConsents(run)).toEqual(allGraph.map((name) => ({ appRoleId: graphPublished[name], principalObjectId: 'sp-object-of-o365-connector', resourceObjectId: graphServicePrincipalObjectId })));
    const outputs = await shown(run.outputs);
    expect(outputs).toMatchObject({ auditSearch: true, graphRoot: 'https://graph.microsoft.com' });
    expect(stackOutputsSchema.strict().safeParse(outputs).error?.issues ?? []).toEqual([]);
  });

  it('consents it alone when the home app requests no service health, and exports no ServiceHealth', async () => {
    const run = await runProgram(customer, undefined, inCustomerTenant({ stacks: homeWith([graphAuditSearchPermission]) }));
    expect(graphConsents(run).map((consent) => consent.appRoleId)).toEqual([auditRoleId]);
    expect(await valueOf(run.outputs.contentTypes)).not.toContain('ServiceHealth');
    expect(await valueOf(run.outputs.auditSearch!)).toBe(true);
  });

  it('exports auditSearch false, and consents nothing of it, when the home app does not request it', async () => {
    const run = await runProgram(customer, undefined, inCustomerTenant({ stacks: homeWith(serviceHealthRoles) }));
    expect(JSON.stringify(run.resources)).not.toContain(auditRoleId);
    expect(await valueOf(run.outputs.auditSearch!)).toBe(false);
  });
});

describe('customer stack, consent verified only', () => {
  const verify = { ...customer, consent: 'verify' };

  it('checks the permission in the app\'s token for Microsoft Graph, creates nothing, and exports auditSearch true', async () => {
    const run = await runProgram(verify, undefined, inCustomerTenant({ stacks: homeWith(allGraph), appServicePrincipal: true, grantedRoles: [...management, ...allGraph] }));
    expect(run.resources.filter((resource) => resource.type.startsWith('azuread:'))).toEqual([]);
    expect(run.tokenRequests.map((request) => [request.apiRoot, request.tenantId, request.clientId])).toEqual([
      ['https://manage.office.com', customerTenant.tenantId, appClientId],
      ['https://graph.microsoft.com', customerTenant.tenantId, appClientId],
    ]);
    expect(await valueOf(run.outputs.auditSearch!)).toBe(true);
  });

  it('stops with one line naming the permission and the URL the customer\'s admin opens when it is not consented', async () => {
    await expect(runProgram(verify, undefined, inCustomerTenant({ stacks: homeWith(allGraph), appServicePrincipal: true, grantedRoles: [...management, ...serviceHealthRoles] }))).rejects.toThrow(new RegExp(`^${[
      'o365-connector:consent: fabrikam\\.onmicrosoft\\.com \\(7d1e4c2a-5b6f-4a8e-9c0d-1e2f3a4b5c6d\\) has not granted Acme MSSP audit collector \\(3f9a6c2e-8d41-4b7a-9e05-6c1d2b3a4f58\\) Microsoft Graph AuditLogsQuery\\.Read\\.All; ',
      'a Global Administrator of fabrikam\\.onmicrosoft\\.com opens https://login\\.microsoftonline\\.com/7d1e4c2a-5b6f-4a8e-9c0d-1e2f3a4b5c6d/adminconsent\\?client_id=3f9a6c2e-8d41-4b7a-9e05-6c1d2b3a4f58 and approves, then run pulumi up again$',
    ].join('')}`));
  });
});
