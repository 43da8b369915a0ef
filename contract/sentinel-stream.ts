/**
 * The Sentinel destination's shape, shared by the Pulumi program (the table, the rule's stream declaration) and the
 * connector (the rows it sends): one list of columns, so the two cannot drift. The Logs Ingestion API drops columns
 * a stream does not declare without a word, so a column missing here would vanish silently.
 */

/** The custom table in the Log Analytics workspace (custom tables end in `_CL`). */
export const sentinelTable = 'O365Audit_CL';
/** The stream the data collection rule declares and the connector posts to. */
export const sentinelStream = 'Custom-O365Audit';

/** Column types of a stream declaration (a table has the same names, `datetime` where a stream says `datetime`). */
export type SentinelColumnType = 'datetime' | 'string' | 'int';

/**
 * The stream's columns, in the order of a row. Raw records fill all but OcsfEvent; `format=ocsf` rows fill
 * TimeGenerated, Id, ContentType and OcsfEvent (the OCSF event as JSON text) instead of RawData.
 */
export const sentinelColumns = [
  { name: 'TimeGenerated', type: 'datetime', description: 'the record\'s CreationTime (UTC)' },
  { name: 'Id', type: 'string', description: 'the record\'s Id' },
  { name: 'ContentType', type: 'string', description: 'the content type it was listed under (Audit.General, DLP.All, ...)' },
  { name: 'RecordType', type: 'int', description: 'the record\'s RecordType' },
  { name: 'Operation', type: 'string', description: 'the record\'s Operation' },
  { name: 'Workload', type: 'string', description: 'the record\'s Workload' },
  { name: 'UserId', type: 'string', description: 'the record\'s UserId' },
  { name: 'ClientIP', type: 'string', description: 'the record\'s ClientIP' },
  { name: 'OrganizationId', type: 'string', description: 'the record\'s OrganizationId' },
  { name: 'RawData', type: 'string', description: 'the record exactly as Microsoft sent it (JSON text)' },
  { name: 'OcsfEvent', type: 'string', description: 'format=ocsf only: the OCSF 1.8.0 event (JSON text)' },
] as const satisfies ReadonlyArray<{ name: string; type: SentinelColumnType; description: string }>;

export type SentinelColumn = (typeof sentinelColumns)[number]['name'];

/** The Azure built-in role that may send data to a data collection rule (the same id in every cloud). */
export const monitoringMetricsPublisherRoleId = '3913510d-42f4-4e42-8a64-420c390055eb';
