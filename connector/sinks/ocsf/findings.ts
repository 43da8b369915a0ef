/**
 * DLP matches and security/compliance alerts → findings.
 * - DLP (RecordType 11 ComplianceDLPSharePoint, 13 ComplianceDLPExchange, 33, and DlpRuleMatch / DlpRuleUndo /
 *   DlpInfo under any record type) → Data Security Finding (2006): the first policy and rule of PolicyDetails are the
 *   policy and the finding's title, the sensitive information types matched are the detection pattern, the rule's
 *   Severity the severity; SharePointMetaData names the file. DlpRuleMatch creates the finding, DlpRuleUndo closes it
 *   (the action was undone), DlpInfo updates it (a false positive noted, nothing undone).
 * - Alerts of the Security and Compliance Alerts schema (RecordType 40: AlertTriggered, AlertEntityGenerated,
 *   AlertUpdated) → Detection Finding (2004): AlertId is the finding's uid, Name its title, Category its type,
 *   PolicyId the analytic (a rule), Severity and Status normalized; a readable ClientIP is the evidence's src_endpoint.
 */
import { createHash } from 'node:crypto';
import { classes, lookup, named, objectOf, objectsOf, recordActor, sourceEndpoint, text, type AuditRecord, type Mapped } from './event.ts';

const dlpOperations: Readonly<Record<string, number>> = { DlpRuleMatch: 1, DlpInfo: 2, DlpRuleUndo: 3 };
const alertOperations: Readonly<Record<string, number>> = { AlertTriggered: 1, AlertEntityGenerated: 2, AlertUpdated: 2 };

/** Microsoft's alert and rule severities → OCSF severity_id. */
const severities: Readonly<Record<string, [number, string]>> = {
  informational: [1, 'Informational'], low: [2, 'Low'], medium: [3, 'Medium'], high: [4, 'High'], critical: [5, 'Critical'],
};
/** Alert Status (Active, Investigating, Resolved, Dismissed) → finding status_id. */
const alertStatuses: Readonly<Record<string, [number, string]>> = {
  active: [1, 'New'], investigating: [2, 'In Progress'], resolved: [4, 'Resolved'], dismissed: [3, 'Suppressed'],
};

export function isDlp(record: AuditRecord): boolean {
  return typeof record['Operation'] === 'string' && Object.hasOwn(dlpOperations, record['Operation']);
}

export function isAlert(record: AuditRecord): boolean {
  return record['RecordType'] === 40 || (typeof record['Operation'] === 'string' && Object.hasOwn(alertOperations, record['Operation']) && record['AlertId'] !== undefined);
}

function severity(value: unknown): Record<string, unknown> {
  const found = typeof value === 'string' ? lookup(severities, value.toLowerCase()) : undefined;
  return found ? { severity_id: found[0], severity: found[1] } : {};
}

export function mapDlp(record: AuditRecord): Mapped | undefined {
  const activityId = lookup(dlpOperations, record['Operation']);
  if (activityId === undefined) return undefined;
  // PolicyDetails as Microsoft's DLP schema documents it, read defensively: any level may be null, empty or not a list.
  const policies = objectsOf(record['PolicyDetails']);
  const policy = policies[0];
  const rule = objectsOf(policy?.['Rules'])[0];
  const sensitiveTypes = policies.flatMap((p) => objectsOf(p['Rules']).flatMap((r) => objectsOf(objectOf(r['ConditionsMatched'])?.['SensitiveInformation'])))
    .map((s) => text(s['SensitiveInformationTypeName'])).filter((name): name is string => name !== undefined);
  const policyName = text(policy?.['PolicyName']);
  const policyId = text(policy?.['PolicyId']);
  const ruleName = text(rule?.['RuleName']);
  const ruleId = text(rule?.['RuleId']);
  const policyNamed = named(policyName, policyId);
  const dataSecurity: Record<string, unknown> = policyNamed ? { policy: policyNamed } : {};
  if (sensitiveTypes.length > 0) dataSecurity['detection_pattern'] = [...new Set(sensitiveTypes)].join(', ');
  const exchange = record['ExchangeMetaData'] !== undefined && record['ExchangeMetaData'] !== null;
  const sharePoint = objectOf(record['SharePointMetaData']);
  dataSecurity['detection_system_id'] = 10;
  dataSecurity['detection_system'] = 'Application-Level DLP';
  dataSecurity['data_lifecycle_state_id'] = exchange ? 2 : sharePoint ? 1 : 0;
  dataSecurity['data_lifecycle_state'] = exchange ? 'Data in-Transit' : sharePoint ? 'Data at-Rest' : 'Unknown';
  const incident = text(record['IncidentId']);
  const attributes: Record<string, unknown> = {
    actor: recordActor(record),
    src_endpoint: sourceEndpoint(record['ClientIP']),
    finding_info: {
      // A finding always has a uid: the incident, else the record's Id, else a digest of the record (stable for one record).
      uid: incident ?? text(record['Id']) ?? createHash('sha256').update(JSON.stringify(record)).digest('hex').slice(0, 32),
      title: [policyName, ruleName].filter(Boolean).join(': ') || String(record['Operation']),
      types: ['Data Loss Prevention'],
      ...(ruleId !== undefined ? { analytic: { uid: ruleId, ...(ruleName !== undefined ? { name: ruleName } : {}), type_id: 1, type: 'Rule' } } : {}),
    },
    data_security: dataSecurity,
    is_alert: activityId === 1,
    status_id: activityId === 3 ? 4 : 1,
    status: activityId === 3 ? 'Resolved' : 'New',
    ...severity(rule?.['Severity']),
  };
  const fileName = text(sharePoint?.['FileName']);
  const filePath = text(sharePoint?.['FilePathUrl']);
  if (fileName !== undefined) {
    attributes['file'] = { name: fileName, type_id: 1, type: 'Regular File', ...(filePath !== undefined ? { path: filePath } : {}) };
  }
  // PolicyDetails and the metadata stay whole in `unmapped`: the event carries only their first policy and rule.
  return { class: classes.dataSecurityFinding, activityId, attributes, consumed: ['UserId', 'UserKey', 'UserType', 'ClientIP', ...(incident !== undefined ? ['IncidentId'] : [])] };
}

export function mapAlert(record: AuditRecord): Mapped | undefined {
  const activityId = lookup(alertOperations, record['Operation']) ?? 99;
  const alertId = text(record['AlertId']);
  if (alertId === undefined) return undefined;
  const status = typeof record['Status'] === 'string' ? lookup(alertStatuses, record['Status'].toLowerCase()) : undefined;
  const name = text(record['Name']);
  const category = text(record['Category']);
  const policyId = text(record['PolicyId']);
  // Detection Finding has no actor outside the host profile; the alert's UserId is always SecurityComplianceAlerts.
  const consumed = ['ClientIP', 'AlertId', ...['Name', 'Category', 'PolicyId', 'Status', 'Source'].filter((member) => text(record[member]) !== undefined)];
  // An unrecognised Severity stays in `unmapped`: the event's severity is then the default, not the alert's.
  if (Object.keys(severity(record['Severity'])).length > 0) consumed.push('Severity');
  const attributes: Record<string, unknown> = {
    finding_info: {
      uid: alertId,
      title: name ?? 'Security & Compliance alert',
      ...(category !== undefined ? { types: [category] } : {}),
      ...(policyId !== undefined ? { analytic: { uid: policyId, ...(name !== undefined ? { name } : {}), type_id: 1, type: 'Rule' } } : {}),
      ...(text(record['Source']) !== undefined ? { product: { name: record['Source'] } } : {}),
    },
    is_alert: true,
    ...(status ? { status_id: status[0], status: status[1] } : text(record['Status']) !== undefined ? { status_id: 99, status: record['Status'] } : { status_id: 0, status: 'Unknown' }),
    ...severity(record['Severity']),
  };
  // Detection Finding has no src_endpoint of its own: the address the alert names is its evidence.
  const ip = sourceEndpoint(record['ClientIP']);
  if (ip['ip'] !== undefined) attributes['evidences'] = [{ src_endpoint: ip }];
  return { class: classes.detectionFinding, activityId, attributes, consumed };
}
