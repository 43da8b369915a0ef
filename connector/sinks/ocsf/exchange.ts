/**
 * Exchange → API Activity (6003). Mailbox audit records (RecordType 2 ExchangeItem, 3 ExchangeItemGroup, 19
 * ExchangeAggregatedOperation, 50 ExchangeItemAggregated, where MailItemsAccessed is; Send, MoveToDeletedItems, …) record an operation on a mailbox, and admin audit
 * records (RecordType 1 ExchangeAdmin) a cmdlet run: both are an API call on the service, not the transport of a
 * message that OCSF's Email Activity (4009) describes (it needs the message's sender, recipients and direction, which
 * a mailbox audit record does not carry). The mailbox (MailboxOwnerUPN, MailboxGuid) or the cmdlet's object
 * (ObjectId) is the resource; the cmdlet's verb or the mailbox action gives the activity.
 */
import { classes, lookup, named, recordActor, sourceEndpoint, text, type AuditRecord, type Mapped } from './event.ts';

/** Mailbox actions (Exchange mailbox schema) → API Activity activity_id: 1 Create, 2 Read, 3 Update, 4 Delete. */
const mailboxActions: Readonly<Record<string, number>> = {
  MailItemsAccessed: 2, FolderBind: 2, MessageBind: 2, MailboxLogin: 2, SearchQueryInitiatedExchange: 2, PreviewItem: 2,
  Create: 1, Send: 1, SendAs: 1, SendOnBehalf: 1, AddFolderPermissions: 1, New_InboxRule: 1,
  Update: 3, Move: 3, MoveToDeletedItems: 3, Copy: 1, UpdateFolderPermissions: 3, UpdateInboxRules: 3, UpdateCalendarDelegation: 3, ApplyRecord: 3,
  SoftDelete: 4, HardDelete: 4, RemoveFolderPermissions: 4,
};

/** Cmdlet verbs (Verb-Noun) → activity_id. */
const verbs: Readonly<Record<string, number>> = {
  New: 1, Add: 1, Install: 1, Import: 1, Enable: 3, Disable: 3, Set: 3, Update: 3, Start: 3, Stop: 3, Grant: 3, Revoke: 3,
  Get: 2, Search: 2, Test: 2, Export: 2, Remove: 4, Uninstall: 4, Clear: 4,
};

const mailboxRecordTypes = new Set([2, 3, 19, 50]);

export function isExchange(record: AuditRecord): boolean {
  const type = record['RecordType'];
  return type === 1 || mailboxRecordTypes.has(type as number) || (record['Workload'] === 'Exchange' && typeof record['Operation'] === 'string'
    && (Object.hasOwn(mailboxActions, record['Operation']) || /^[A-Z][a-z]+-[A-Za-z]+$/.test(record['Operation'])));
}

export function mapExchange(record: AuditRecord): Mapped | undefined {
  const operation = text(record['Operation']);
  if (operation === undefined) return undefined;
  const cmdlet = /^([A-Z][a-z]+)-[A-Za-z]+$/.exec(operation);
  const activityId = (cmdlet ? lookup(verbs, cmdlet[1]) : lookup(mailboxActions, operation)) ?? 99;
  const consumed = ['UserId', 'UserKey', 'UserType', 'ClientIP'];
  const resources: Array<Record<string, unknown>> = [];
  const owner = text(record['MailboxOwnerUPN']);
  const mailboxGuid = text(record['MailboxGuid']);
  if (owner !== undefined || mailboxGuid !== undefined) {
    resources.push({ type: 'Mailbox', ...named(owner, mailboxGuid) });
    consumed.push(...(owner !== undefined ? ['MailboxOwnerUPN'] : []), ...(mailboxGuid !== undefined ? ['MailboxGuid'] : []));
  }
  const objectId = text(record['ObjectId']);
  if (objectId !== undefined) {
    resources.push({ type: cmdlet ? 'Exchange object' : 'Item', name: objectId });
    consumed.push('ObjectId');
  }
  const attributes: Record<string, unknown> = {
    actor: recordActor(record),
    src_endpoint: sourceEndpoint(record['ClientIP'], record['ClientIPAddress']),
    api: { operation, service: { name: cmdlet ? 'Exchange Online admin' : 'Exchange Online mailbox' } },
  };
  if (resources.length > 0) attributes['resources'] = resources;
  return { class: classes.apiActivity, activityId, attributes, consumed };
}
