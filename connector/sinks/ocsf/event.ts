/**
 * The part of every OCSF 1.8.0 event that does not depend on the class: classification (class, category, activity,
 * type_uid = class_uid * 100 + activity_id, with their captions), `time` from CreationTime, `metadata` (product
 * Microsoft 365 and the workload, `uid` = the record's Id, version 1.8.0), the cloud profile, status from
 * ResultStatus, `raw_data` (the record's bytes as sent) and `unmapped` (every member of the record that a mapping did
 * not carry over whole). A family module says which class and activity a record is and fills the class's own
 * attributes; this module does the rest, so that no family can forget the parts every event needs.
 */
import { isIP } from 'node:net';
import { creationTimeMs } from '../../core/records.ts';

export const ocsfVersion = '1.8.0';

/** An audit record as JSON.parse read it: the common schema's members and the workload's own. */
export type AuditRecord = Readonly<Record<string, unknown>>;

/** An OCSF class: its uid within the category, its caption, and the captions of the activities a mapping uses. */
export interface OcsfClass {
  readonly name: string;
  readonly caption: string;
  readonly categoryUid: number;
  readonly categoryCaption: string;
  readonly uid: number;
  readonly activities: Readonly<Record<number, string>>;
}

const iam = { categoryUid: 3, categoryCaption: 'Identity & Access Management' } as const;
const application = { categoryUid: 6, categoryCaption: 'Application Activity' } as const;
const findings = { categoryUid: 2, categoryCaption: 'Findings' } as const;
const other = { 0: 'Unknown', 99: 'Other' } as const;

/** The classes the mappings emit, with the activity captions of OCSF 1.8.0 (the tests check them against the schema). */
export const classes = {
  authentication: { name: 'authentication', caption: 'Authentication', ...iam, uid: 2, activities: { ...other, 1: 'Logon', 2: 'Logoff' } },
  accountChange: { name: 'account_change', caption: 'Account Change', ...iam, uid: 1, activities: { ...other, 1: 'Create', 2: 'Enable', 3: 'Password Change', 4: 'Password Reset', 5: 'Disable', 6: 'Delete' } },
  entityManagement: { name: 'entity_management', caption: 'Entity Management', ...iam, uid: 4, activities: { ...other, 1: 'Create', 2: 'Read', 3: 'Update', 4: 'Delete', 8: 'Enable', 9: 'Disable' } },
  groupManagement: { name: 'group_management', caption: 'Group Management', ...iam, uid: 6, activities: { ...other, 1: 'Assign Privileges', 2: 'Revoke Privileges', 3: 'Add User', 4: 'Remove User', 5: 'Delete', 6: 'Create' } },
  apiActivity: { name: 'api_activity', caption: 'API Activity', ...application, uid: 3, activities: { ...other, 1: 'Create', 2: 'Read', 3: 'Update', 4: 'Delete' } },
  fileHosting: { name: 'file_hosting', caption: 'File Hosting Activity', ...application, uid: 6, activities: { ...other, 1: 'Upload', 2: 'Download', 3: 'Update', 4: 'Delete', 5: 'Rename', 6: 'Copy', 7: 'Move', 8: 'Restore', 9: 'Preview', 10: 'Lock', 11: 'Unlock', 12: 'Share', 13: 'Unshare', 14: 'Open', 15: 'Sync', 16: 'Unsync' } },
  dataSecurityFinding: { name: 'data_security_finding', caption: 'Data Security Finding', ...findings, uid: 6, activities: { ...other, 1: 'Create', 2: 'Update', 3: 'Close', 4: 'Suppressed' } },
  detectionFinding: { name: 'detection_finding', caption: 'Detection Finding', ...findings, uid: 4, activities: { ...other, 1: 'Create', 2: 'Update', 3: 'Close' } },
} as const satisfies Record<string, OcsfClass>;

export function classUid(ocsfClass: OcsfClass): number {
  return ocsfClass.categoryUid * 1000 + ocsfClass.uid;
}

/** What a family mapping decided for one record. */
export interface Mapped {
  readonly class: OcsfClass;
  readonly activityId: number;
  /** The class's own attributes (actor, user, file, finding_info, …), and any base attribute it sets itself. */
  readonly attributes: Record<string, unknown>;
  /** Members of the record carried over whole into the event: they are left out of `unmapped`. */
  readonly consumed: readonly string[];
}

/** The members every event maps the same way; whatever else a mapping does not consume goes to `unmapped`. */
const commonConsumed = ['Id', 'CreationTime', 'Workload', 'OrganizationId', 'Operation'];

/** A table's own entry for a key read from a record: `constructor` or `toString` in a record is no entry. */
export function lookup<T>(table: Readonly<Record<string, T>>, key: unknown): T | undefined {
  return typeof key === 'string' && Object.hasOwn(table, key) ? table[key] : undefined;
}

/** A record member that should be an object, else undefined (null, a list, text). */
export function objectOf(value: unknown): Readonly<Record<string, unknown>> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? value as Record<string, unknown> : undefined;
}

/** A record member that should be a list of objects: its objects, skipping anything else; none when it is no list. */
export function objectsOf(value: unknown): ReadonlyArray<Readonly<Record<string, unknown>>> {
  return Array.isArray(value) ? value.map(objectOf).filter((item) => item !== undefined) : [];
}

/** An object's name and uid, each when given; undefined when neither is. */
export function named(name: string | undefined, uid: string | undefined): Record<string, unknown> | undefined {
  if (name === undefined && uid === undefined) return undefined;
  return { ...(name !== undefined ? { name } : {}), ...(uid !== undefined ? { uid } : {}) };
}

export function text(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** A client IP as address and port: Exchange writes `1.2.3.4:5678` and `[2001:db8::1]:443`; anything else unreadable is undefined. */
export function ipAddress(value: unknown): { ip: string; port?: number } | undefined {
  if (typeof value !== 'string' || value === '') return undefined;
  if (isIP(value)) return { ip: value };
  const withPort = /^\[([^\]]+)\](?::(\d+))?$/.exec(value) ?? /^(\d{1,3}(?:\.\d{1,3}){3}):(\d+)$/.exec(value);
  if (!withPort || !isIP(withPort[1]!)) return undefined;
  const port = withPort[2] === undefined ? undefined : Number(withPort[2]);
  return { ip: withPort[1]!, ...(port !== undefined && port <= 65535 ? { port } : {}) };
}

/**
 * The Name/Value pairs Microsoft uses for ExtendedProperties, Parameters and the like, as a lookup; for
 * ModifiedProperties the NewValue, else the OldValue: a removal ("Remove member from role.") leaves NewValue "" and
 * names what was removed in OldValue. An empty value counts as none.
 */
export function nameValue(list: unknown, name: string): string | undefined {
  if (!Array.isArray(list)) return undefined;
  for (const item of list) {
    if (item && typeof item === 'object' && (item as { Name?: unknown }).Name === name) {
      const { Value: value, NewValue: newValue, OldValue: oldValue } = item as { Value?: unknown; NewValue?: unknown; OldValue?: unknown };
      return text(value) ?? text(newValue) ?? text(oldValue);
    }
  }
  return undefined;
}

// OCSF's email_t pattern: an address outside it stays a name only.
const emailPattern = /^[a-zA-Z0-9!#$%&'*+\-/=?^_`{|}~.]+@[a-zA-Z0-9-]+\.[a-zA-Z0-9-.]+$/;

/** Microsoft's UserType (common schema) as OCSF user.type_id, with the Microsoft name when OCSF has none. */
const userTypes: Readonly<Record<number, { id: number; type?: string }>> = {
  0: { id: 1 }, 1: { id: 99, type: 'Reserved' }, 2: { id: 2 }, 3: { id: 2 }, 4: { id: 3 }, 5: { id: 4 }, 6: { id: 4 },
  7: { id: 99, type: 'CustomPolicy' }, 8: { id: 99, type: 'SystemPolicy' },
};
const userTypeCaptions: Readonly<Record<number, string>> = { 1: 'User', 2: 'Admin', 3: 'System', 4: 'Service' };

/** An OCSF user from a UPN or name, an alternative key (PUID) and Microsoft's UserType. */
export function ocsfUser(name: unknown, uid?: unknown, userType?: unknown): Record<string, unknown> {
  const user: Record<string, unknown> = {};
  const label = text(name);
  if (label !== undefined) {
    user['name'] = label;
    if (emailPattern.test(label)) user['email_addr'] = label;
  }
  if (text(uid) !== undefined) user['uid'] = uid;
  if (user['name'] === undefined && user['uid'] === undefined) user['name'] = 'Unknown';
  if (typeof userType === 'number') {
    const mapped = userTypes[userType] ?? { id: 99, type: String(userType) };
    user['type_id'] = mapped.id;
    user['type'] = mapped.type ?? userTypeCaptions[mapped.id];
  }
  return user;
}

/** The actor of a record: who did it (UserId, UserKey, UserType of the common schema). */
export function recordActor(record: AuditRecord): Record<string, unknown> {
  return { user: ocsfUser(record['UserId'] ?? record['UserKey'], record['UserKey'], record['UserType']) };
}

/** Where the request came from: ClientIP (or a workload's own member); a name says so when the record has none. */
export function sourceEndpoint(...candidates: unknown[]): Record<string, unknown> {
  for (const candidate of candidates) {
    const address = ipAddress(candidate);
    if (address !== undefined) return { ...address };
  }
  return { name: 'Unknown' };
}

/** ResultStatus: Succeeded/True/success, Failed/False/failed; PartiallySucceeded and others as Other with the value. */
export function statusOf(value: unknown): Record<string, unknown> {
  if (typeof value !== 'string' || value === '') return {};
  const lower = value.toLowerCase();
  if (lower === 'succeeded' || lower === 'success' || lower === 'true') return { status_id: 1, status: 'Success' };
  if (lower === 'failed' || lower === 'failure' || lower === 'false') return { status_id: 2, status: 'Failure' };
  return { status_id: 99, status: value };
}

/** metadata.labels of an event whose time is the processing time: the record's CreationTime could not be read. */
export const timeNotReadLabel = 'time: CreationTime unreadable, processing time used';

export interface BuildOptions {
  /** The content type the record came in (`metadata.log_name`). */
  readonly contentType?: string | undefined;
  /** The record's bytes as Microsoft sent them, as text (`raw_data`). */
  readonly rawText: string;
}

/** The whole OCSF event of one record, from a family's decision. */
export function buildEvent(record: AuditRecord, mapped: Mapped, options: BuildOptions): Record<string, unknown> {
  const ocsfClass = mapped.class;
  const uid = classUid(ocsfClass);
  const activityId = mapped.activityId;
  const activityCaption = ocsfClass.activities[activityId] ?? 'Other';
  const operation = text(record['Operation']);
  const workload = text(record['Workload']);
  const time = creationTimeMs(record['CreationTime']);
  const metadata: Record<string, unknown> = {
    version: ocsfVersion,
    product: { name: 'Microsoft 365', vendor_name: 'Microsoft', ...(workload ? { feature: { name: workload } } : {}) },
    profiles: ['cloud'],
    log_provider: 'Office 365 Management Activity API',
  };
  if (typeof record['Id'] === 'string') metadata['uid'] = record['Id'];
  if (options.contentType) metadata['log_name'] = options.contentType;
  if (operation) metadata['event_code'] = operation;
  if (typeof record['CreationTime'] === 'string') metadata['original_time'] = record['CreationTime'];
  if (typeof record['OrganizationId'] === 'string') metadata['tenant_uid'] = record['OrganizationId'];
  // No readable CreationTime: the event's time is when it was mapped, and says so (CreationTime stays in `unmapped`).
  const processedAt = Date.now();
  if (time === undefined) {
    metadata['processed_time'] = processedAt;
    metadata['labels'] = [timeNotReadLabel];
  }
  // RecordType stays in `unmapped`: OCSF has no member for a source record type (log_version is the log's version).

  const event: Record<string, unknown> = {
    class_uid: uid,
    class_name: ocsfClass.caption,
    category_uid: ocsfClass.categoryUid,
    category_name: ocsfClass.categoryCaption,
    activity_id: activityId,
    activity_name: activityId === 99 ? (operation ?? 'Other') : activityCaption,
    type_uid: uid * 100 + activityId,
    type_name: `${ocsfClass.caption}: ${activityCaption}`,
    severity_id: 1,
    severity: 'Informational',
    time: time ?? processedAt,
    metadata,
    cloud: { provider: 'Microsoft' },
    ...mapped.attributes,
  };
  // ResultStatus is the outcome unless the family read the outcome elsewhere (a sign-in's is in its error code).
  const statusFromRecord = event['status_id'] === undefined ? statusOf(record['ResultStatus']) : {};
  Object.assign(event, statusFromRecord);
  if (operation && event['message'] === undefined) event['message'] = workload ? `${workload}: ${operation}` : operation;
  event['raw_data'] = options.rawText;
  const unmapped = unmappedOf(record, mapped.consumed, statusFromRecord['status_id'] !== undefined, time !== undefined);
  if (unmapped) event['unmapped'] = unmapped;
  return event;
}

function unmappedOf(record: AuditRecord, consumed: readonly string[], statusRead: boolean, timeRead: boolean): Record<string, unknown> | undefined {
  let unmapped: Record<string, unknown> | undefined;
  for (const key in record) {
    if ((commonConsumed.includes(key) && (key !== 'CreationTime' || timeRead)) || (statusRead && key === 'ResultStatus')) continue;
    // A ClientIP that is no address (or none) was not carried over: it stays, so that nothing is lost.
    if (consumed.includes(key) && (key !== 'ClientIP' || ipAddress(record[key]) !== undefined)) continue;
    (unmapped ??= {})[key] = record[key];
  }
  return unmapped;
}
