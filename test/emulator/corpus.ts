/**
 * The stand-in's audit log: blobs of realistic records for all five content types, every one a pure function
 * of (seed, content type, blob index), so a corpus of millions of records needs no memory and the ground truth
 * (every distinct record Id that can be served) is known exactly.
 *
 * Blobs sit on a fixed grid of availability times (`contentCreated`); the events inside happened 0.5 to 12 hours
 * earlier, out of order. Some blobs are listed late (visible only some time after their contentCreated), and
 * some records are delivered again in the next blob, as the real service does.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { contentTypes, type ContentType } from '../../connector/api/content-types.ts';

export interface CorpusOptions {
  readonly seed: number;
  readonly tenantId: string;
  readonly tenantDomain: string;
  /** Start of the grid: the first blob's contentCreated. */
  readonly origin: Date;
  /** Minutes between two blobs of one content type. */
  readonly blobIntervalMinutes: number;
  readonly recordsPerBlob: number;
  /** Share of blobs that become visible only 20 to 90 minutes after their contentCreated. */
  readonly lateBlobRate: number;
  /** Share of blobs that repeat one record of the previous blob. */
  readonly duplicateRate: number;
}

export interface BlobDescriptor {
  readonly contentType: ContentType;
  readonly index: number;
  readonly contentId: string;
  readonly contentCreated: Date;
  readonly contentExpiration: Date;
  /** When the blob first shows up in listings. */
  readonly visibleAt: Date;
  /** Set for blobs added at run time (addContent or the arrival generator), numbered per content type. */
  readonly added?: number;
}

export interface AddContentOptions {
  /** Records to serve as they are; otherwise `count` generated ones (default: recordsPerBlob). */
  readonly records?: ReadonlyArray<Record<string, unknown> & { Id: string }>;
  readonly count?: number;
  /** Availability time; default now. A contentCreated before `visibleAt` makes the blob late. */
  readonly contentCreated?: Date;
  /** When listings first show it; default now. */
  readonly visibleAt?: Date;
}

export type AuditRecordObject = Record<string, unknown> & { Id: string; CreationTime: string };

const minute = 60_000;
const retention = 7 * 24 * 60 * minute;

function digest(...parts: Array<string | number>): Buffer {
  return createHash('sha256').update(parts.join('|')).digest();
}

/** A deterministic fraction in [0, 1) for the given key. */
export function fraction(...parts: Array<string | number>): number {
  return digest(...parts).readUInt32BE(0) / 0x1_0000_0000;
}

function guid(...parts: Array<string | number>): string {
  const hex = digest(...parts).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** UTC without a zone suffix, as the service writes CreationTime. */
function creationTime(date: Date): string {
  return date.toISOString().slice(0, 19);
}

const fixtureDir = join(import.meta.dirname, '../fixtures/records');

// The shared fixtures are real records of another tenant: they are re-homed into the stand-in's tenant.
const fixtureTenantId = 'b86ab9d4-fcf1-4b11-8a06-7a8f91b47fbd';
const fixtureDomain = 'testsiem.onmicrosoft.com';

function loadTemplates(file: string, tenantId: string, tenantDomain: string): Record<string, unknown>[] {
  const text = readFileSync(join(fixtureDir, file), 'utf8').replaceAll(fixtureTenantId, tenantId).replaceAll(fixtureDomain, tenantDomain);
  return text.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>);
}

const users = ['adele.vance', 'alex.wilber', 'diego.siciliani', 'grady.archie', 'isaiah.langer', 'johanna.lorenz', 'lee.gu', 'lidia.holloway', 'megan.bowen', 'nestor.wilke'];
const userKeys = new Map(users.map((user) => [user, createHash('sha256').update(user).digest('hex').slice(0, 8).toUpperCase()]));

function builtInTemplates(tenantId: string, tenantDomain: string): Record<ContentType, Record<string, unknown>[]> {
  return {
    'Audit.AzureActiveDirectory': [{
      RecordType: 15, Workload: 'AzureActiveDirectory', Operation: 'UserLoggedIn', ResultStatus: 'Succeeded', UserType: 0, Version: 1,
      AzureActiveDirectoryEventType: 1, ApplicationId: '00000003-0000-0ff1-ce00-000000000000', ObjectId: '00000003-0000-0ff1-ce00-000000000000',
      ExtendedProperties: [{ Name: 'UserAgent', Value: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36' }, { Name: 'RequestType', Value: 'OAuth2:Token' }, { Name: 'ResultStatusDetail', Value: 'Success' }],
      ModifiedProperties: [], Target: [{ Type: 0, ID: '00000003-0000-0ff1-ce00-000000000000' }],
    }, ...loadTemplates('15-azuread-sts-logon.jsonl', tenantId, tenantDomain)],
    'Audit.Exchange': [{
      RecordType: 2, Workload: 'Exchange', Operation: 'MailItemsAccessed', ResultStatus: 'Succeeded', UserType: 0, Version: 1,
      LogonType: 0, ExternalAccess: false, MailboxOwnerUPN: '', ClientInfoString: 'Client=OWA;Action=ViaProxy',
      OperationProperties: [{ Name: 'MailAccessType', Value: 'Bind' }, { Name: 'IsThrottled', Value: 'False' }],
      Folders: [{ FolderItems: [{ InternetMessageId: '<DB7PR04MB5178@eurprd04.prod.outlook.com>', SizeInBytes: 24183 }], Path: '\\Inbox' }],
    }, ...loadTemplates('01-exchange-admin.jsonl', tenantId, tenantDomain)],
    'Audit.SharePoint': [{
      RecordType: 6, Workload: 'SharePoint', Operation: 'FileAccessed', UserType: 0, Version: 1, EventSource: 'SharePoint', ItemType: 'File',
      SourceFileExtension: 'docx', SourceRelativeUrl: 'Shared Documents/Finance', SourceFileName: 'Q3 forecast.docx',
      UserAgent: 'Microsoft Office Word 2014 (16.0.18025) Windows NT 10.0',
    }, ...loadTemplates('06-sharepointfileop.jsonl', tenantId, tenantDomain)],
    'Audit.General': [{
      RecordType: 25, Workload: 'MicrosoftTeams', Operation: 'MemberAdded', UserType: 0, Version: 1, ResultStatus: 'Succeeded',
      TeamName: 'Incident Response', TeamGuid: '19:0b5c4b7e8e0f4c4c9b3a7f3e2d1c0b9a@thread.skype', CommunicationType: 'Team',
      Members: [{ DisplayName: 'Lee Gu', Role: 1, UPN: 'lee.gu@contoso.onmicrosoft.com' }],
    }],
    'DLP.All': [{
      RecordType: 13, Workload: 'Exchange', Operation: 'DlpRuleMatch', UserType: 0, Version: 1, IncidentId: '', SensitiveInfoDetectionIsIncluded: true,
      PolicyDetails: [{ PolicyId: 'c3e4b2c1-5f6a-4b7c-8d9e-0f1a2b3c4d5e', PolicyName: 'U.S. Financial Data', Rules: [{ RuleId: 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d', RuleName: 'Low volume of content detected', Severity: 'Low', Actions: ['NotifyUser'], ConditionsMatched: { SensitiveInformation: [{ SensitiveInformationTypeName: 'Credit Card Number', Count: 1, Confidence: 85 }] } }] }],
      ExchangeMetaData: { From: 'megan.bowen@contoso.onmicrosoft.com', To: ['billing@fabrikam.example'], Subject: 'Card on file', MessageID: '<AM6PR04MB4321@eurprd04.prod.outlook.com>' },
    }],
  };
}

const operations: Record<ContentType, readonly string[]> = {
  'Audit.AzureActiveDirectory': ['UserLoggedIn', 'UserLoginFailed', 'Add user.', 'Update user.', 'Add member to role.', 'Reset user password.'],
  'Audit.Exchange': ['MailItemsAccessed', 'Send', 'MoveToDeletedItems', 'New-InboxRule', 'Set-Mailbox', 'Add-MailboxPermission'],
  'Audit.SharePoint': ['FileAccessed', 'FileModified', 'FileDownloaded', 'FileDeleted', 'SharingSet', 'AnonymousLinkCreated'],
  'Audit.General': ['MemberAdded', 'TeamCreated', 'MessageSent', 'ChannelAdded', 'PlanCreated', 'FormCreated'],
  'DLP.All': ['DlpRuleMatch', 'DlpRuleUndo', 'DlpInfo'],
};

export class Corpus {
  readonly options: CorpusOptions;
  readonly #templates: Record<ContentType, Record<string, unknown>[]>;
  readonly #interval: number;
  readonly #added = new Map<ContentType, Array<{ blob: BlobDescriptor; records?: AuditRecordObject[] }>>();
  readonly #addedById = new Map<string, { blob: BlobDescriptor; records?: AuditRecordObject[] }>();
  readonly #addedCounts = new Map<string, number>();

  constructor(options: CorpusOptions) {
    this.options = options;
    this.#templates = builtInTemplates(options.tenantId, options.tenantDomain);
    this.#interval = options.blobIntervalMinutes * minute;
  }

  blob(contentType: ContentType, index: number): BlobDescriptor {
    const { seed, tenantId } = this.options;
    const contentCreated = new Date(this.options.origin.getTime() + index * this.#interval + Math.floor(fraction(seed, contentType, index, 'jitter') * Math.min(this.#interval, minute)));
    const late = fraction(seed, contentType, index, 'late') < this.options.lateBlobRate;
    const visibleAt = late ? new Date(contentCreated.getTime() + (20 + Math.floor(fraction(seed, contentType, index, 'delay') * 70)) * minute) : contentCreated;
    const stamp = contentCreated.toISOString().replace(/[-:T.Z]/g, '').slice(0, 14);
    const contentId = `${stamp}${String(index).padStart(8, '0')}$${stamp}$${contentType.toLowerCase().replace('.', '_')}_${tenantId.replaceAll('-', '')}$${digest(seed, contentType, index).toString('hex').slice(0, 32)}$emea0026`;
    return { contentType, index, contentId, contentCreated, contentExpiration: new Date(contentCreated.getTime() + retention), visibleAt };
  }

  /** Blob indexes whose contentCreated falls in [start, end). */
  indexRange(start: Date, end: Date): { first: number; last: number } {
    const origin = this.options.origin.getTime();
    const first = Math.max(0, Math.floor((start.getTime() - origin) / this.#interval) - 1);
    const last = Math.floor((end.getTime() - origin) / this.#interval) + 1;
    return { first, last };
  }

  /** Adds one blob that is not on the grid (content arriving now, or late), and returns it. */
  add(contentType: ContentType, now: Date, options: AddContentOptions = {}): BlobDescriptor {
    const list = this.#added.get(contentType) ?? [];
    this.#added.set(contentType, list);
    const added = list.length;
    const contentCreated = options.contentCreated ?? now;
    const visibleAt = options.visibleAt ?? (contentCreated > now ? contentCreated : now);
    const stamp = contentCreated.toISOString().replace(/[-:T.Z]/g, '').slice(0, 14);
    const contentId = `${stamp}A${String(added).padStart(7, '0')}$${stamp}$${contentType.toLowerCase().replace('.', '_')}_${this.options.tenantId.replaceAll('-', '')}$${digest(this.options.seed, contentType, 'added', added).toString('hex').slice(0, 32)}$emea0026`;
    const blob: BlobDescriptor = { contentType, index: -1, contentId, contentCreated, contentExpiration: new Date(contentCreated.getTime() + retention), visibleAt, added };
    const entry = {
      blob,
      ...(options.records ? { records: options.records.map((record) => ({ CreationTime: creationTime(new Date(contentCreated.getTime() - 30 * minute)), ...record }) as AuditRecordObject) } : {}),
    };
    if (!options.records && options.count !== undefined) this.#addedCounts.set(contentId, options.count);
    list.push(entry);
    this.#addedById.set(contentId, entry);
    return blob;
  }

  /** Every blob (grid and added) of a content type whose contentCreated is in [start, end), by contentCreated. */
  blobsCreatedIn(contentType: ContentType, start: Date, end: Date): BlobDescriptor[] {
    // The API's window rule: start inclusive, end exclusive, on contentCreated.
    const inWindow = (blob: BlobDescriptor) => blob.contentCreated >= start && blob.contentCreated < end;
    const blobs: BlobDescriptor[] = [];
    const { first, last } = this.indexRange(start, end);
    for (let index = first; index <= last; index += 1) {
      const blob = this.blob(contentType, index);
      if (inWindow(blob)) blobs.push(blob);
    }
    const added = (this.#added.get(contentType) ?? []).filter(({ blob }) => inWindow(blob));
    if (added.length === 0) return blobs;
    return [...blobs, ...added.map(({ blob }) => blob)].sort((a, b) => a.contentCreated.getTime() - b.contentCreated.getTime());
  }

  /** Parses a contentId back to its blob, or undefined when it is not one of ours. */
  blobOf(contentId: string): BlobDescriptor | undefined {
    const added = this.#addedById.get(contentId);
    if (added) return added.blob;
    for (const contentType of contentTypes) {
      const marker = `$${contentType.toLowerCase().replace('.', '_')}_`;
      if (!contentId.includes(marker)) continue;
      const index = Number(contentId.slice(14, 22));
      if (!Number.isInteger(index)) return undefined;
      const blob = this.blob(contentType, index);
      return blob.contentId === contentId ? blob : undefined;
    }
    return undefined;
  }

  #record(contentType: ContentType, blob: BlobDescriptor, position: number): AuditRecordObject {
    const { seed, tenantId, tenantDomain } = this.options;
    const key = blob.added === undefined ? [seed, contentType, blob.index, position] as const : [seed, contentType, 'added', blob.added, position] as const;
    // One digest per record gives every choice below (a blob of 100 records costs 200 hashes, not 1,000).
    const draw = digest(...key, 'record');
    const share = (slot: number) => draw.readUInt32BE(slot * 4) / 0x1_0000_0000;
    const templates = this.#templates[contentType];
    const template = templates[Math.floor(share(0) * templates.length)]!;
    const userName = users[Math.floor(share(1) * users.length)]!;
    const user = `${userName}@${tenantDomain}`;
    const happened = new Date(blob.contentCreated.getTime() - Math.floor((30 + share(2) * 690) * minute));
    const ip = `${20 + (draw[12]! % 180)}.${draw[13]!}.${draw[14]!}.${1 + (draw[15]! % 253)}`;
    const operationList = operations[contentType];
    const record: AuditRecordObject = {
      ...template,
      CreationTime: creationTime(happened),
      Id: guid(...key, 'id'),
      Operation: operationList[Math.floor(share(4) * operationList.length)]!,
      OrganizationId: tenantId,
      UserKey: `10032001${userKeys.get(userName)}@${tenantDomain}`,
      UserId: user,
      ClientIP: ip,
    };
    if (contentType === 'Audit.SharePoint') {
      record['ObjectId'] = `https://${tenantDomain.split('.')[0]}.sharepoint.com/sites/finance/Shared Documents/report-${position}.docx`;
      record['SiteUrl'] = `https://${tenantDomain.split('.')[0]}.sharepoint.com/sites/finance/`;
    } else if (contentType !== 'Audit.AzureActiveDirectory') {
      record['ObjectId'] = user;
    }
    if (position % 17 === 3) record['ObjectId'] = `Überprüfung — «${user}»\nzweite Zeile`;
    return record;
  }

  /** The records of one blob, in the order the service would return them (not time order). */
  records(blob: BlobDescriptor): AuditRecordObject[] {
    if (blob.added !== undefined) {
      const entry = this.#addedById.get(blob.contentId);
      if (entry?.records) return entry.records;
      const count = this.#addedCounts.get(blob.contentId) ?? this.options.recordsPerBlob;
      return Array.from({ length: count }, (_, position) => this.#record(blob.contentType, blob, position));
    }
    const records: AuditRecordObject[] = [];
    for (let position = 0; position < this.options.recordsPerBlob; position += 1) {
      records.push(this.#record(blob.contentType, blob, position));
    }
    if (blob.index > 0 && fraction(this.options.seed, blob.contentType, blob.index, 'duplicate') < this.options.duplicateRate) {
      const previous = this.blob(blob.contentType, blob.index - 1);
      records.push(this.#record(blob.contentType, previous, 0));
    }
    return records;
  }

  /** Every record Id (duplicates included) in the given blobs, without building their records. */
  *recordIds(blobs: Iterable<BlobDescriptor>): Generator<string> {
    const { seed, recordsPerBlob, duplicateRate } = this.options;
    for (const blob of blobs) {
      if (blob.added !== undefined) {
        for (const record of this.records(blob)) yield record.Id;
        continue;
      }
      for (let position = 0; position < recordsPerBlob; position += 1) yield guid(seed, blob.contentType, blob.index, position, 'id');
      if (blob.index > 0 && fraction(seed, blob.contentType, blob.index, 'duplicate') < duplicateRate) {
        yield guid(seed, blob.contentType, blob.index - 1, 0, 'id');
      }
    }
  }
}
