/**
 * Everything else → API Activity (6003): who (UserId, UserKey, UserType), what (Operation, on the workload's
 * service), from where (ClientIP), the object (ObjectId) as the resource, the outcome (ResultStatus) and the time.
 * The activity is read from the operation's leading verb when it has a clear one (Add…, Get…, Update…, Remove…),
 * otherwise it is Other with the operation as its name. Every other member of the record stays in `unmapped`.
 */
import { classes, recordActor, sourceEndpoint, text, type AuditRecord, type Mapped } from './event.ts';

const verbs: ReadonlyArray<[RegExp, number]> = [
  [/^(add|new|create|install|import|upload|register|invite)/i, 1],
  [/^(get|view|read|search|list|preview|export|download|accessed|query)/i, 2],
  [/^(set|update|modify|edit|change|enable|disable|rename|move|restore|grant|revoke|assign|approve)/i, 3],
  [/^(remove|delete|hard ?delete|soft ?delete|uninstall|purge|clear)/i, 4],
];

export function mapApiActivity(record: AuditRecord): Mapped {
  const operation = text(record['Operation']) ?? 'Unknown';
  const activityId = verbs.find(([pattern]) => pattern.test(operation))?.[1] ?? 99;
  const workload = text(record['Workload']);
  const attributes: Record<string, unknown> = {
    actor: recordActor(record),
    src_endpoint: sourceEndpoint(record['ClientIP'], record['ClientIPAddress'], record['ActorIpAddress']),
    api: { operation, ...(workload !== undefined ? { service: { name: workload } } : {}) },
  };
  const consumed = ['UserId', 'UserKey', 'UserType', 'ClientIP'];
  const objectId = text(record['ObjectId']);
  if (objectId !== undefined) {
    attributes['resources'] = [{ name: objectId }];
    consumed.push('ObjectId');
  }
  return { class: classes.apiActivity, activityId, attributes, consumed };
}
