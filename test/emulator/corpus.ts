/**
 * The stand-in's audit log: blobs of realistic records for all five content types, every one a pure function
 * of (seed, content type, blob index), so a corpus of millions of records needs no memory and the ground truth
 * (every distinct record Id that can be served, and the exact bytes of each) is known exactly.
 *
 * Records are made as JSON text, as the service sends them, never as objects serialized on the way out. About one
 * in five carries encodings that JSON.parse + JSON.stringify would change (integer-like keys out of order, 1.0,
 * 1e3 and -0, \u00e9 escapes of non-ASCII, \/ in URLs, integers above 2^53), plus some that trip naive scanners
 * (a raw U+2028, escaped quotes and backslashes, braces inside strings): a connector that re-serializes records
 * cannot deliver the same bytes, so the end-to-end tests can tell. A blob's body is its records' texts joined
 * by "," inside "[" "]", compact, as Microsoft sends it; a record repeated in a later blob is the same text.
 *
 * Blobs sit on a fixed grid of availability times (`contentCreated`); the events inside happened 0.5 to 12 hours
 * earlier, out of order. Some blobs are listed late (visible only some time after their contentCreated), and
 * some records are delivered again in the next blob, as the real service does.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { contentTypes, type ContentType } from '../../contract/content-types.ts';

export interface CorpusOptions {
  readonly seed: number;
  readonly tenantId: string;
  readonly tenantDomain: string;
  /** Start of the grid: the first blob's contentCreated. */
  readonly origin: Date;
  /** Minutes between two blobs of one content type. */
  readonly blobIntervalMinutes: number;
  readonly recordsPerBlob: number;
  /** Share of blobs that become visible only 20 minutes to `lateMaxMinutes` after their contentCreated. */
  readonly lateBlobRate: number;
  /** How late a late blob may be listed, in minutes (default 90; days for the retention-long tests). */
  readonly lateMaxMinutes?: number;
  /** Share of blobs that repeat one record of an earlier blob. */
  readonly duplicateRate: number;
  /** How far back (in minutes of contentCreated) the repeated record's blob may be; default: the previous blob. */
  readonly duplicateMaxAgeMinutes?: number;
  /** False for a quiet tenant: no blobs on the grid, only those added at run time. Default true. */
  readonly grid?: boolean;
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
  /** Records to serve, serialized with JSON.stringify (a CreationTime half an hour before the blob when absent). */
  readonly records?: ReadonlyArray<Record<string, unknown> & { Id: string }>;
  /** Records to serve as these exact texts, each a JSON object with a string Id: for tests that need exact bytes. */
  readonly recordTexts?: readonly string[];
  /** Otherwise `count` generated records (default: recordsPerBlob). */
  readonly count?: number;
  /** Availability time; default now. A contentCreated before `visibleAt` makes the blob late. */
  readonly contentCreated?: Date;
  /** When listings first show it; default now. */
  readonly visibleAt?: Date;
}

/** One record as served: its exact JSON text, and its Id and CreationTime as the strings it carries. */
export interface RecordText {
  readonly id: string;
  readonly creationTime: string | undefined;
  readonly text: string;
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

/** A GUID from the first 16 bytes of a digest (the other 16 stay free for the record's other choices). */
function guidOf(draw: Buffer): string {
  const hex = draw.toString('hex', 0, 16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** UTC without a zone suffix, as the service writes CreationTime. */
function creationTime(date: Date): string {
  return date.toISOString().slice(0, 19);
}

const fixtureDir = join(import.meta.dirname, '../fixtures/records');

// The fixture records (test/fixtures/README.md) belong to an invented tenant: they are re-homed into the stand-in's.
export const fixtureTenantId = '6f1d9c2e-4b7a-4e0f-9a3c-5d8e2b1f7c40';
export const fixtureDomain = 'northwindtraders.onmicrosoft.com';

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


/**
 * The body of a blob: its records' texts joined by "," inside "[" "]", compact, as Microsoft sends it, encoded
 * record by record (one big UTF-16 string of a whole blob is several times slower to encode).
 */
export function blobBody(texts: readonly string[]): Buffer {
  let length = 2 + Math.max(0, texts.length - 1);
  for (const text of texts) length += Buffer.byteLength(text, 'utf8');
  const body = Buffer.allocUnsafe(length);
  let offset = body.write('[', 0, 'latin1');
  texts.forEach((text, n) => {
    if (n > 0) offset += body.write(',', offset, 'latin1');
    offset += body.write(text, offset, 'utf8');
  });
  body.write(']', offset, 'latin1');
  return body;
}

/** The members every record gets per draw; the rest of a record is its template's, serialized once. */
type Slot = 'CreationTime' | 'Id' | 'Operation' | 'UserKey' | 'UserId' | 'ClientIP' | 'ObjectId';
const slotOrder: readonly Slot[] = ['CreationTime', 'Id', 'Operation', 'UserKey', 'UserId', 'ClientIP', 'ObjectId'];

interface CompiledTemplate {
  /** Text around the slots: a record is parts[0] + slots[0]'s value + parts[1] + ... */
  readonly parts: readonly string[];
  readonly slots: readonly Slot[];
  /** The template's own ObjectId as JSON text (Azure AD records keep it). */
  readonly objectId: string | undefined;
}

/**
 * Serializes a template once, with the per-record members left as slots in the template's key order (members
 * the template lacks go at the end, in `slotOrder`) and the per-tenant constants filled in.
 */
function compile(template: Record<string, unknown>, constants: Record<string, unknown>): CompiledTemplate {
  const keys = [...Object.keys(template)];
  for (const key of [...slotOrder, ...Object.keys(constants)]) if (!keys.includes(key)) keys.push(key);
  const parts: string[] = [];
  const slots: Slot[] = [];
  let pending = '{';
  keys.forEach((key, n) => {
    pending += `${n === 0 ? '' : ','}${JSON.stringify(key)}:`;
    if ((slotOrder as readonly string[]).includes(key)) {
      parts.push(pending);
      slots.push(key as Slot);
      pending = '';
    } else {
      pending += JSON.stringify(key in constants ? constants[key] : template[key]);
    }
  });
  parts.push(`${pending}}`);
  return { parts, slots, objectId: template['ObjectId'] === undefined ? undefined : JSON.stringify(template['ObjectId']) };
}

/** Every non-ASCII UTF-16 unit as a \uXXXX escape (pairs stay pairs): valid anywhere, since only strings hold them. */
function escapeNonAscii(text: string): string {
  return text.replace(/[\u0080-\uffff]/g, (unit) => `\\u${unit.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

const displayNames = ['Renée François', 'Jürgen Müller', 'Łukasz Żółć', 'Zoë Ångström 🔒', '陈伟 (Chén Wěi)', 'Søren Ørsted'];
const subjects = ['Quarterly review\u2028(draft 2)', 'Board pack\u2028\u2029final', 'Re: access request\u2028approved'];
const decimals = ['1.0', '2.50', '0.10', '3.0'];
const exponents = ['1e3', '2E+2', '5e-1', '1.5e3'];
const zeros = ['-0', '-0.0', '0.0'];
const integerKeyed = ['{"30":4,"7":12,"1":3}', '{"10":"a","2":"b"}', '{"365":1,"90":2,"30":0}'];
/** Strings that end in a backslash, hold quotes, or hold JSON (braces, brackets) inside them. */
const scannerTraps = [
  JSON.stringify({ ClientQuery: '{"Folder":"\\\\Inbox\\\\Q3 \\"final\\"","Items":[1,2]}', LocalPath: 'C:\\Users\\lee.gu\\' }).slice(1, -1),
  JSON.stringify({ ClientQuery: 'subject:"a \\" b" AND from:{x}', LocalPath: '\\\\fileserver\\share\\"quoted"\\' }).slice(1, -1),
];

/** The encodings JSON.parse + JSON.stringify changes: a tricky record has one or two of them. */
const changingEncodings = ['integer-keys', 'number-forms', 'unicode-escapes', 'escaped-slashes', 'big-integer'] as const;
type ChangingEncoding = typeof changingEncodings[number];

/**
 * Gives about one record in five (digest byte 26 below 51) one or two of `changingEncodings`, and often a raw
 * U+2028 or a scanner trap besides (those survive JSON.parse + JSON.stringify, but not a naive line splitter or
 * brace counter), all drawn from the record's digest bytes 26 to 31. Members are added at the end; the
 * whole-text rewrites (\u escapes, \/) are valid anywhere in JSON text, since only strings hold those characters.
 */
function withTrickyEncodings(text: string, draw: Buffer, host: string): string {
  if (draw[26]! >= 51) return text;
  const first = changingEncodings[draw[27]! % changingEncodings.length]!;
  const second = draw[28]! & 4 ? changingEncodings[(draw[27]! + 1 + ((draw[28]! >> 3) % 4)) % changingEncodings.length] : undefined;
  const has = (encoding: ChangingEncoding) => first === encoding || second === encoding;
  const pick = <T>(list: readonly T[], byte: number) => list[draw[byte]! % list.length]!;
  let result = text.slice(0, -1);
  if (has('integer-keys')) result += `,"ItemCountsByDays":${pick(integerKeyed, 29)}`;
  if (has('number-forms')) {
    const forms = 1 + ((draw[29]! >> 2) % 7); // one, two or all three of 1.0, 1e3 and -0
    if (forms & 1) result = `${result.replace('"Version":1,', '"Version":1.0,')},"RiskScore":${pick(decimals, 29)}`;
    if (forms & 2) result += `,"SizeLimitKB":${pick(exponents, 30)}`;
    if (forms & 4) result += `,"TimeZoneBias":${pick(zeros, 31)}`;
  }
  if (has('unicode-escapes')) result += `,"UserDisplayName":${JSON.stringify(pick(displayNames, 29))}`;
  if (has('escaped-slashes')) result += `,"ReferrerUrl":"https://${host}.sharepoint.com/sites/finance/Forms/AllItems.aspx?id=${draw[30]}"`;
  if (has('big-integer')) {
    let big = (draw.readBigUInt64BE(0) % 9_000_000_000_000_000_000n) + 1_000_000_000_000_000_000n;
    if (big % 10n === 0n) big += 1n; // 19 digits, the last not 0: no double prints back the same digits
    result += `,"SequenceNumber":${big}`;
  }
  if (has('unicode-escapes')) result = escapeNonAscii(result);
  if (has('escaped-slashes')) result = result.replaceAll('/', '\\/');
  if (draw[28]! & 1) result += `,"MessageSubject":${JSON.stringify(pick(subjects, 30))}`;
  if (draw[28]! & 2) result += `,${pick(scannerTraps, 31)}`;
  return `${result}}`;
}

function parseRecordText(text: string, where: string): RecordText {
  let parsed: unknown;
  try { parsed = JSON.parse(text); } catch (error) { throw new TypeError(`${where} is not JSON: ${(error as Error).message}`); }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || typeof (parsed as { Id?: unknown }).Id !== 'string') {
    throw new TypeError(`${where} is not a JSON object with a string Id`);
  }
  const creation = (parsed as { CreationTime?: unknown }).CreationTime;
  return { id: (parsed as { Id: string }).Id, creationTime: typeof creation === 'string' ? creation : undefined, text };
}

interface AddedBlob {
  readonly blob: BlobDescriptor;
  readonly texts?: readonly RecordText[];
  readonly count?: number;
}

export class Corpus {
  readonly options: CorpusOptions;
  readonly #compiled: Record<ContentType, CompiledTemplate[]>;
  readonly #interval: number;
  readonly #host: string;
  readonly #users: ReadonlyArray<{ userId: string; userKey: string; plain: string }>;
  readonly #added = new Map<ContentType, AddedBlob[]>();
  readonly #addedById = new Map<string, AddedBlob>();

  constructor(options: CorpusOptions) {
    this.options = options;
    const { tenantId, tenantDomain } = options;
    this.#host = tenantDomain.split('.')[0]!;
    const templates = builtInTemplates(tenantId, tenantDomain);
    const constants = (contentType: ContentType): Record<string, unknown> => ({
      OrganizationId: tenantId,
      ...(contentType === 'Audit.SharePoint' ? { SiteUrl: `https://${this.#host}.sharepoint.com/sites/finance/` } : {}),
    });
    this.#compiled = Object.fromEntries(contentTypes.map((type) => [type, templates[type].map((template) => compile(template, constants(type)))])) as Record<ContentType, CompiledTemplate[]>;
    this.#interval = options.blobIntervalMinutes * minute;
    this.#users = users.map((name) => ({
      plain: `${name}@${tenantDomain}`,
      userId: JSON.stringify(`${name}@${tenantDomain}`),
      userKey: JSON.stringify(`10032001${userKeys.get(name)}@${tenantDomain}`),
    }));
  }

  blob(contentType: ContentType, index: number): BlobDescriptor {
    const { seed, tenantId } = this.options;
    const contentCreated = new Date(this.options.origin.getTime() + index * this.#interval + Math.floor(fraction(seed, contentType, index, 'jitter') * Math.min(this.#interval, minute)));
    const late = fraction(seed, contentType, index, 'late') < this.options.lateBlobRate;
    const lateMax = Math.max(20, this.options.lateMaxMinutes ?? 90);
    const visibleAt = late ? new Date(contentCreated.getTime() + (20 + Math.floor(fraction(seed, contentType, index, 'delay') * (lateMax - 20))) * minute) : contentCreated;
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
    if (options.records && options.recordTexts) throw new TypeError('addContent takes records or recordTexts, not both');
    const list = this.#added.get(contentType) ?? [];
    this.#added.set(contentType, list);
    const added = list.length;
    const contentCreated = options.contentCreated ?? now;
    const visibleAt = options.visibleAt ?? (contentCreated > now ? contentCreated : now);
    const stamp = contentCreated.toISOString().replace(/[-:T.Z]/g, '').slice(0, 14);
    const contentId = `${stamp}A${String(added).padStart(7, '0')}$${stamp}$${contentType.toLowerCase().replace('.', '_')}_${this.options.tenantId.replaceAll('-', '')}$${digest(this.options.seed, contentType, 'added', added).toString('hex').slice(0, 32)}$emea0026`;
    const blob: BlobDescriptor = { contentType, index: -1, contentId, contentCreated, contentExpiration: new Date(contentCreated.getTime() + retention), visibleAt, added };
    const defaultCreationTime = creationTime(new Date(contentCreated.getTime() - 30 * minute));
    const texts = options.recordTexts?.map((text, n) => parseRecordText(text, `recordTexts[${n}]`))
      ?? options.records?.map((record, n) => parseRecordText(JSON.stringify({ CreationTime: defaultCreationTime, ...record }), `records[${n}]`));
    const entry: AddedBlob = { blob, ...(texts ? { texts } : { count: options.count ?? this.options.recordsPerBlob }) };
    list.push(entry);
    this.#addedById.set(contentId, entry);
    return blob;
  }

  /** The blobs of a content type added at run time (addContent, the arrival generator), in the order they were added. */
  addedBlobs(contentType: ContentType): BlobDescriptor[] {
    return (this.#added.get(contentType) ?? []).map(({ blob }) => blob);
  }

  /** Every blob (grid and added) of a content type whose contentCreated is in [start, end), by contentCreated. */
  blobsCreatedIn(contentType: ContentType, start: Date, end: Date): BlobDescriptor[] {
    // The API's window rule: start inclusive, end exclusive, on contentCreated.
    const inWindow = (blob: BlobDescriptor) => blob.contentCreated >= start && blob.contentCreated < end;
    const blobs: BlobDescriptor[] = [];
    const { first, last } = this.options.grid === false ? { first: 0, last: -1 } : this.indexRange(start, end);
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
    if (this.options.grid === false) return undefined;
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

  /** A record's digest: its Id is made from the first half, every other choice from the second. */
  #draw(blob: BlobDescriptor, position: number): Buffer {
    const { seed } = this.options;
    return blob.added === undefined ? digest(seed, blob.contentType, blob.index, position, 'id') : digest(seed, blob.contentType, 'added', blob.added, position, 'id');
  }

  #generate(blob: BlobDescriptor, position: number): RecordText {
    const contentType = blob.contentType;
    // One digest per record gives its Id (bytes 0-15) and every choice below (bytes 16-31).
    const draw = this.#draw(blob, position);
    const id = guidOf(draw);
    const templates = this.#compiled[contentType];
    const template = templates[Math.floor((draw.readUInt16BE(16) / 0x1_0000) * templates.length)]!;
    const user = this.#users[draw[18]! % this.#users.length]!;
    const happened = creationTime(new Date(blob.contentCreated.getTime() - Math.floor((30 + (draw.readUInt16BE(19) / 0x1_0000) * 690) * minute)));
    const operationList = operations[contentType];
    const operation = JSON.stringify(operationList[draw[21]! % operationList.length]!);
    const ip = `"${20 + (draw[22]! % 180)}.${draw[23]!}.${draw[24]!}.${1 + (draw[25]! % 253)}"`;
    let objectId: string;
    if (position % 17 === 3) objectId = JSON.stringify(`Überprüfung — «${user.plain}»\nzweite Zeile`);
    else if (contentType === 'Audit.SharePoint') objectId = `"https://${this.#host}.sharepoint.com/sites/finance/Shared Documents/report-${position}.docx"`;
    else if (contentType === 'Audit.AzureActiveDirectory' && template.objectId !== undefined) objectId = template.objectId;
    else objectId = user.userId;
    const { parts, slots } = template;
    const pieces: string[] = [parts[0]!];
    for (let n = 0; n < slots.length; n += 1) {
      switch (slots[n]) {
        case 'CreationTime': pieces.push(`"${happened}"`); break;
        case 'Id': pieces.push(`"${id}"`); break;
        case 'Operation': pieces.push(operation); break;
        case 'UserKey': pieces.push(user.userKey); break;
        case 'UserId': pieces.push(user.userId); break;
        case 'ClientIP': pieces.push(ip); break;
        case 'ObjectId': pieces.push(objectId); break;
      }
      pieces.push(parts[n + 1]!);
    }
    const text = pieces.join('');
    return { id, creationTime: happened, text: withTrickyEncodings(text, draw, this.#host) };
  }

  /** The records of one blob as served, in the order the service would return them (not time order). */
  recordTexts(blob: BlobDescriptor): RecordText[] {
    if (blob.added !== undefined) {
      const entry = this.#addedById.get(blob.contentId);
      if (entry?.texts) return [...entry.texts];
      return Array.from({ length: entry?.count ?? this.options.recordsPerBlob }, (_, position) => this.#generate(blob, position));
    }
    const texts: RecordText[] = [];
    for (let position = 0; position < this.options.recordsPerBlob; position += 1) texts.push(this.#generate(blob, position));
    const source = this.#repeatSource(blob);
    if (source !== undefined) texts.push(this.#generate(this.blob(blob.contentType, source), 0));
    return texts;
  }

  /** The exact body the service answers for a blob. */
  body(blob: BlobDescriptor): Buffer {
    return blobBody(this.recordTexts(blob).map((record) => record.text));
  }

  /** The records of one blob as the sinks receive them: exact bytes, with the Id and CreationTime they carry. */
  rawRecords(blob: BlobDescriptor): Array<{ id: string; creationTime: string | undefined; bytes: Buffer }> {
    return this.recordTexts(blob).map(({ id, creationTime: time, text }) => ({ id, creationTime: time, bytes: Buffer.from(text, 'utf8') }));
  }

  /** The records of one blob parsed, for tests that read fields (parsing loses what the bytes say: see recordTexts). */
  records(blob: BlobDescriptor): AuditRecordObject[] {
    return this.recordTexts(blob).map((record) => JSON.parse(record.text) as AuditRecordObject);
  }

  /** Every record (duplicates included) of the given blobs, lazily, as served. */
  *recordTextsIn(blobs: Iterable<BlobDescriptor>): Generator<RecordText> {
    for (const blob of blobs) yield* this.recordTexts(blob);
  }

  /** Every record Id (duplicates included) in the given blobs, without building their records. */
  *recordIds(blobs: Iterable<BlobDescriptor>): Generator<string> {
    const { recordsPerBlob } = this.options;
    for (const blob of blobs) {
      if (blob.added !== undefined) {
        const entry = this.#addedById.get(blob.contentId);
        if (entry?.texts) for (const record of entry.texts) yield record.id;
        else for (let position = 0; position < (entry?.count ?? recordsPerBlob); position += 1) yield guidOf(this.#draw(blob, position));
        continue;
      }
      for (let position = 0; position < recordsPerBlob; position += 1) yield guidOf(this.#draw(blob, position));
      const source = this.#repeatSource(blob);
      if (source !== undefined) yield guidOf(this.#draw(this.blob(blob.contentType, source), 0));
    }
  }

  /** The index of the earlier blob whose first record this one repeats, if it repeats one. */
  #repeatSource(blob: BlobDescriptor): number | undefined {
    const { seed, duplicateRate, duplicateMaxAgeMinutes } = this.options;
    if (blob.index <= 0 || fraction(seed, blob.contentType, blob.index, 'duplicate') >= duplicateRate) return undefined;
    const reach = Math.max(1, Math.floor(((duplicateMaxAgeMinutes ?? 0) * minute) / this.#interval));
    return Math.max(0, blob.index - 1 - Math.floor(fraction(seed, blob.contentType, blob.index, 'repeat-age') * reach));
  }
}
