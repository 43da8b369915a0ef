/**
 * Everything else → API Activity (6003): who (UserId, UserKey, UserType), what (Operation, on the workload's
 * service), from where (ClientIP), the object (ObjectId) as the resource, the outcome (ResultStatus) and the time.
 * The activity is what the operation says happened when it ends with a past participle (ListCreated, MemberRemoved,
 * PageViewed), else its leading verb as a whole word (Add…, Get-…, "Update user."), otherwise it is Other with the
 * operation as its name. Every other member of the record stays in `unmapped`.
 */
import { classes, recordActor, sourceEndpoint, text, type AuditRecord, type Mapped } from './event.ts';

/** Words given in lower case; each matches capitalized too ("add" matches Add, "hard ?delete" HardDelete). */
function words(list: string): string {
  return list.split('|').map((word) => word.replace(/(^| \?)([a-z])/g, (_all, before: string, letter: string) => `${before}[${letter.toUpperCase()}${letter}]`)).join('|');
}

/**
 * A leading verb counts when a word boundary follows it (an upper-case letter, "-", a space or the end), so that
 * List in ListCreated is no verb's prefix and NewsFeed is not New.
 */
const verbs: ReadonlyArray<[RegExp, number]> = ([
  ['add|new|create|install|import|upload|register|invite', 1],
  ['get|view|read|search|list|preview|export|download|accessed|query', 2],
  ['set|update|modify|edit|change|enable|disable|rename|move|restore|grant|revoke|assign|approve', 3],
  ['remove|delete|hard ?delete|soft ?delete|uninstall|purge|clear', 4],
] as const).map(([list, id]) => [new RegExp(`^(?:${words(list)})(?=[A-Z\\- ]|$)`), id]);

/** What happened, as the operation's last word: PascalCase (ListItemDeleted) or after a space ("item deleted."). */
const suffixes: ReadonlyArray<[RegExp, number]> = ([
  ['created|added', 1],
  ['viewed|accessed|read', 2],
  ['updated|changed|modified', 3],
  ['deleted|removed', 4],
] as const).map(([list, id]) => {
  const capitalized = list.split('|').map((word) => `${word[0]!.toUpperCase()}${word.slice(1)}`).join('|');
  return [new RegExp(`(?:^|[a-z0-9])(?:${capitalized})$|(?:^|[ _-])(?:${list})\\.?$`, ''), id];
});

export function activityOf(operation: string): number {
  return (suffixes.find(([pattern]) => pattern.test(operation)) ?? verbs.find(([pattern]) => pattern.test(operation)))?.[1] ?? 99;
}

export function mapApiActivity(record: AuditRecord): Mapped {
  const operation = text(record['Operation']) ?? 'Unknown';
  const activityId = activityOf(operation);
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
