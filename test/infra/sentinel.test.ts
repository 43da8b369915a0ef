import { describe, expect, it } from 'vitest';
import * as pulumi from '@pulumi/pulumi';
import { monitoringMetricsPublisherRoleId, sentinelColumns } from '../../contract/sentinel-stream.ts';
import { stackOutputsSchema } from '../../contract/stack-outputs.ts';
import { InfraConfigError, readConfig } from '../../infra/config.ts';
import { runProgram, stackSettings, type ProgramRun } from './harness.ts';
import { sentinelRuleImmutableId, sentinelSubscriptionId, sentinelWorkspaceId, sentinelWorkspaceLocation, valueOf } from './mocks.ts';

const settings = { sentinelWorkspace: sentinelWorkspaceId };

async function shown(outputs: ProgramRun['outputs']): Promise<Record<string, unknown>> {
  const entries = await Promise.all(Object.entries(outputs).map(async ([key, output]) => [key, await valueOf(output as pulumi.Output<unknown>)] as const));
  return Object.fromEntries(entries);
}

function problemsOf(config: Record<string, string>): string[] {
  const all = stackSettings(config);
  try {
    readConfig({ keys: () => Object.keys(all), get: (key) => all[key] });
    return [];
  } catch (error) {
    if (error instanceof InfraConfigError) return error.problems.map((problem) => `${problem.key}: ${problem.message}`);
    throw error;
  }
}

describe('sentinelWorkspace: the Sentinel destination beside the workspace', () => {
  it('creates the table O365Audit_CL with the stream\'s columns, in the workspace', async () => {
    const { ofType } = await runProgram(settings);
    const [table] = ofType('azure-native:operationalinsights:Table');
    expect(table!.inputs).toMatchObject({ resourceGroupName: 'rg-sentinel', workspaceName: 'soc-sentinel', tableName: 'O365Audit_CL', plan: 'Analytics' });
    expect(table!.inputs.schema.name).toBe('O365Audit_CL');
    expect(table!.inputs.schema.columns.map((column: { name: string; type: string }) => [column.name, column.type])).toEqual(
      sentinelColumns.map((column) => [column.name, column.type === 'datetime' ? 'dateTime' : column.type]),
    );
  });

  it('creates a data collection endpoint and a rule in the workspace\'s region: stream Custom-O365Audit, a transform to the table, the workspace as destination', async () => {
    const { ofType } = await runProgram(settings);
    const [endpoint] = ofType('azure-native:monitor:DataCollectionEndpoint');
    expect(endpoint!.inputs).toMatchObject({ resourceGroupName: 'rg-sentinel', location: sentinelWorkspaceLocation, networkAcls: { publicNetworkAccess: 'Enabled' } });
    const [rule] = ofType('azure-native:monitor:DataCollectionRule');
    expect(rule!.inputs).toMatchObject({
      resourceGroupName: 'rg-sentinel', location: sentinelWorkspaceLocation,
      dataCollectionEndpointId: `/subscriptions/${sentinelSubscriptionId}/resourceGroups/rg-sentinel/providers/Microsoft.Insights/dataCollectionEndpoints/o365-connector-sentinel`,
      destinations: { logAnalytics: [{ name: 'sentinelWorkspace', workspaceResourceId: sentinelWorkspaceId }] },
      dataFlows: [{ streams: ['Custom-O365Audit'], destinations: ['sentinelWorkspace'], transformKql: 'source', outputStream: 'Custom-O365Audit_CL' }],
    });
    expect(rule!.inputs.streamDeclarations['Custom-O365Audit'].columns).toEqual(sentinelColumns.map(({ name, type }) => ({ name, type })));
    expect(rule!.inputs.streamDeclarations['Custom-O365Audit'].columns.map((column: { name: string }) => column.name)).toEqual(
      ['TimeGenerated', 'Id', 'ContentType', 'RecordType', 'Operation', 'Workload', 'UserId', 'ClientIP', 'OrganizationId', 'RawData', 'OcsfEvent'],
    );
  });

  it('gives the app\'s service principal Monitoring Metrics Publisher on the rule, through a provider of the workspace\'s subscription', async () => {
    const { ofType } = await runProgram(settings);
    const [assignment] = ofType('azure-native:authorization:RoleAssignment');
    const servicePrincipal = ofType('azuread:index/servicePrincipal:ServicePrincipal').find((sp) => sp.name === 'o365-connector');
    expect(servicePrincipal).toBeDefined();
    expect(assignment!.inputs).toEqual({
      scope: `/subscriptions/${sentinelSubscriptionId}/resourceGroups/rg-sentinel/providers/Microsoft.Insights/dataCollectionRules/o365-connector-sentinel`,
      principalId: 'sp-object-of-o365-connector',
      principalType: 'ServicePrincipal',
      roleDefinitionId: `/subscriptions/${sentinelSubscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${monitoringMetricsPublisherRoleId}`,
    });
    const providers = ofType('pulumi:providers:azure-native');
    expect(providers.map((provider) => [provider.name, provider.inputs.subscriptionId, provider.inputs.environment])).toEqual([['azure-native-sentinel', sentinelSubscriptionId, 'public']]);
    for (const resource of ofType('azure-native:monitor:DataCollectionRule').concat(ofType('azure-native:authorization:RoleAssignment'), ofType('azure-native:operationalinsights:Table'))) {
      expect(resource.provider).toMatch(/\$pulumi:providers:azure-native::azure-native-sentinel::/);
    }
  });

  it('gives the role to the configured principal instead (a managed identity)', async () => {
    const principal = '6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b';
    const { ofType } = await runProgram({ ...settings, sentinelPrincipalId: principal });
    expect(ofType('azure-native:authorization:RoleAssignment').map((assignment) => assignment.inputs.principalId)).toEqual([principal]);
  });

  it('exports sentinelEndpoint, sentinelRule and sentinelStream, as the connector\'s contract reads them', async () => {
    const outputs = await shown((await runProgram(settings)).outputs);
    expect(outputs).toMatchObject({
      sentinelEndpoint: `https://o365-connector-sentinel-a1b2.${sentinelWorkspaceLocation}-1.ingest.monitor.azure.com`,
      sentinelRule: sentinelRuleImmutableId,
      sentinelStream: 'Custom-O365Audit',
    });
    const parsed = stackOutputsSchema.strict().safeParse(outputs);
    expect(parsed.error?.issues ?? []).toEqual([]);
  });

  it('creates nothing of Sentinel, and exports none of its outputs, without sentinelWorkspace', async () => {
    const { resources, outputs } = await runProgram({});
    expect(resources.filter((resource) => /^azure-native:(monitor|operationalinsights|authorization):/.test(resource.type))).toEqual([]);
    expect(Object.keys(outputs).filter((key) => key.startsWith('sentinel'))).toEqual([]);
  });

  it('refuses, one line each, a workspace that is not a resource id, sentinelPrincipalId alone, and Sentinel in a home or customer stack', () => {
    expect(problemsOf({ sentinelWorkspace: 'soc-sentinel' })).toEqual([expect.stringMatching(/^o365-connector:sentinelWorkspace: "soc-sentinel" is not a Log Analytics workspace's resource id; use \/subscriptions\/<id>\/resourceGroups\/<group>\/providers\/Microsoft\.OperationalInsights\/workspaces\/<name>/)]);
    expect(problemsOf({ sentinelPrincipalId: '6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b' })).toEqual(['o365-connector:sentinelPrincipalId: is set but no sentinelWorkspace is configured; set o365-connector:sentinelWorkspace, or remove sentinelPrincipalId']);
    expect(problemsOf({ ...settings, sentinelPrincipalId: 'not-a-guid' })).toEqual([expect.stringMatching(/^o365-connector:sentinelPrincipalId: "not-a-guid" is not an object id/)]);
    expect(problemsOf({ ...settings, mode: 'home' })).toEqual([expect.stringMatching(/^o365-connector:sentinelWorkspace: is read in single stacks only/)]);
    expect(problemsOf({ ...settings, mode: 'customer', homeStack: 'acme/o365-connector/home' })).toEqual([expect.stringMatching(/^o365-connector:sentinelWorkspace: is read in single stacks only/)]);
  });
});
