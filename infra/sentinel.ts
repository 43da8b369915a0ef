import * as pulumi from '@pulumi/pulumi';
import * as authorization from '@pulumi/azure-native/authorization/index.js';
import * as monitor from '@pulumi/azure-native/monitor/index.js';
import * as operationalinsights from '@pulumi/azure-native/operationalinsights/index.js';
import type { Provider } from '@pulumi/azure-native/provider.js';
import { monitoringMetricsPublisherRoleId, sentinelColumns, sentinelStream, sentinelTable } from '../contract/sentinel-stream.ts';
import type { SentinelConfig } from './config.ts';

export interface SentinelDestinationArgs extends SentinelConfig {
  /** The principal that sends: the app's service principal, or the configured one (a managed identity). */
  readonly senderObjectId: pulumi.Input<string>;
  /** An azure-native provider signed in to the workspace's subscription. */
  readonly provider: Provider;
}

/** The rule's name for the workspace destination (a name inside the rule, not a resource). */
const destinationName = 'sentinelWorkspace';

/**
 * Where the Sentinel sink delivers, beside an existing Log Analytics workspace (Sentinel's), in its resource group and
 * region: the custom table O365Audit_CL, a data collection endpoint (its logs ingestion URL is the sink's endpoint),
 * a data collection rule declaring the stream Custom-O365Audit with the columns the connector sends and a transform
 * to the table, and Monitoring Metrics Publisher on the rule for the sender. The endpoint is a data collection
 * endpoint rather than the rule's own (`kind: Direct`): this provider's rule API (2022-06-01) does not report a
 * rule's own endpoints.
 */
export class SentinelDestination extends pulumi.ComponentResource {
  readonly table: operationalinsights.Table;
  readonly endpoint: monitor.DataCollectionEndpoint;
  readonly rule: monitor.DataCollectionRule;
  readonly roleAssignment: authorization.RoleAssignment;
  /** The logs ingestion URL (sentinelEndpoint). */
  readonly endpointUrl: pulumi.Output<string>;
  /** The rule's immutable id (sentinelRule). */
  readonly ruleId: pulumi.Output<string>;
  readonly stream = sentinelStream;

  constructor(name: string, args: SentinelDestinationArgs, options: pulumi.ComponentResourceOptions = {}) {
    super('o365-connector:index:SentinelDestination', name, {}, options);
    const child = { parent: this, provider: args.provider };
    const { resourceGroupName, workspaceName, workspaceResourceId } = args;
    // A rule and its endpoint live in the workspace's region.
    const location = operationalinsights.getWorkspaceOutput({ resourceGroupName, workspaceName }, child).location;
    this.table = new operationalinsights.Table(name, {
      resourceGroupName, workspaceName, tableName: sentinelTable, plan: 'Analytics',
      schema: {
        name: sentinelTable,
        description: 'Office 365 Management Activity API audit records, delivered by o365-connector',
        columns: sentinelColumns.map((column) => ({ name: column.name, type: column.type === 'datetime' ? 'dateTime' : column.type, description: column.description })),
      },
    }, child);
    this.endpoint = new monitor.DataCollectionEndpoint(name, {
      resourceGroupName, location,
      description: 'Logs ingestion endpoint of o365-connector (Microsoft Sentinel)',
      networkAcls: { publicNetworkAccess: 'Enabled' },
    }, child);
    this.rule = new monitor.DataCollectionRule(name, {
      resourceGroupName, location,
      description: 'Office 365 audit records from o365-connector into O365Audit_CL',
      dataCollectionEndpointId: this.endpoint.id,
      streamDeclarations: { [sentinelStream]: { columns: sentinelColumns.map(({ name: column, type }) => ({ name: column, type })) } },
      destinations: { logAnalytics: [{ name: destinationName, workspaceResourceId }] },
      // The rows already have the table's columns: the transform passes them on; queries parse RawData when they need a field.
      dataFlows: [{ streams: [sentinelStream], destinations: [destinationName], transformKql: 'source', outputStream: `Custom-${sentinelTable}` }],
    }, { ...child, dependsOn: [this.table] });
    this.roleAssignment = new authorization.RoleAssignment(`${name}-publisher`, {
      scope: this.rule.id,
      principalId: args.senderObjectId,
      principalType: 'ServicePrincipal',
      roleDefinitionId: `/subscriptions/${args.subscriptionId}/providers/Microsoft.Authorization/roleDefinitions/${monitoringMetricsPublisherRoleId}`,
    }, child);
    this.endpointUrl = this.endpoint.logsIngestion.apply((ingestion) => ingestion?.endpoint ?? '');
    this.ruleId = this.rule.immutableId;
    this.registerOutputs({ endpointUrl: this.endpointUrl, ruleId: this.ruleId, stream: this.stream });
  }
}
