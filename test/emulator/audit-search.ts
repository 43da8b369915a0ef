/**
 * Microsoft Graph's audit log query API (the Purview audit search, `/security/auditLog/queries`, served on v1.0 and
 * beta in the same shape) for one tenant of the stand-in: asynchronous queries over the tenant's own corpus, which
 * hold every record of the last `retentionDays` (180 by default, as Audit Standard), not only the Management
 * Activity API's 7 days.
 *
 * What the search holds: every distinct record (by Id) of the corpus whose blob had been made available
 * (contentCreated) when the query was created and whose CreationTime lies in [created - retention, created):
 * records of grid blobs older than the API's 7 days, and records added at run time (addContent, arrivals). A record
 * repeated in a later blob is one record. A record without a CreationTime is not searchable. Nothing is held in
 * memory but the records of what tests added: a window is read by enumerating the grid blobs that can hold its
 * records (a record is 30 minutes to 12 hours before its blob, see corpus.ts).
 *
 * A query: POST answers 201 `notStarted`; each GET of it is a poll: the first `pollsUntilDone - 1` answer `running`,
 * the next `succeeded` (or `failed`, for queries `failNext` marked), and a query is done anyway once `finishAfterMs`
 * of the stand-in's clock have passed since its creation (as Microsoft runs queries whether polled or not). Its
 * records are fixed when it is first seen done: the first `recordCountLimit` matching records in a stable order
 * (grid blobs by content type and index, then added blobs), paged by `pageSize` with an absolute
 * `@odata.nextLink` whose `$skiptoken` names the query and the offset, so a link can be followed again later.
 * `approximateReturnedRecordCount` is the number it returns: equal to `recordCountLimit` when the window held more.
 *
 * Each record is an auditLogRecord whose `auditData` is the corpus record's exact text with Graph's
 * `"@odata.type":"#microsoft.graph.security.auditData"` member spliced in first (never re-serialized): cutting that
 * member out by byte slicing gives back the bytes the Management Activity API serves.
 *
 * Choices where Microsoft documents nothing: the records of a query that has not succeeded answer 400 BadRequest;
 * a `recordTypeFilters` name outside `recordTypeNames` answers 400 (as Graph refuses a name its enum lacks);
 * unknown body properties answer 400; filters compare case-insensitively; `keywordFilter` is a case-insensitive
 * substring of the record's text; `administrativeUnitIdFilters` match nothing (no record names one).
 */
import { createHash } from 'node:crypto';
import { contentTypes, type ContentType } from '../../contract/content-types.ts';
import { graphAuditSearchPermission } from '../../contract/clouds.ts';
import type { BlobDescriptor, Corpus, RecordText } from './corpus.ts';
import type { HttpAnswer } from './identity.ts';
import { graphError } from './service-announcements.ts';

const minute = 60_000;
const day = 24 * 60 * minute;
/** A generated record's CreationTime is 30 minutes to 12 hours (plus the second it drops) before its blob's contentCreated. */
const nearestBeforeBlob = 30 * minute;
const furthestBeforeBlob = 12 * 60 * minute + 1000;

/** The knobs of one tenant's audit search; `configure` changes them at any time. */
export interface AuditSearchSettings {
  /** The GET of a query that answers succeeded (or failed): earlier ones answer running. Default 2. */
  pollsUntilDone: number;
  /** Milliseconds of the stand-in's clock after which a query is done, polled or not. Default 60,000. */
  finishAfterMs: number;
  /** Records per page. Default 100. */
  pageSize: number;
  /** Records a query returns at most (its recordCountLimit). Default 50,000. */
  recordCountLimit: number;
  /** Queries of the tenant not yet done; creating one more answers 429. Default 10. */
  maxUnfinishedQueries: number;
  /** How far back from a query's creation the search holds records. Default 180 (Audit Standard). */
  retentionDays: number;
  /** Retry-After (seconds) of the 429s: too many unfinished queries, and `throttleNext` unless it names its own. Default 1. */
  retryAfterSeconds: number;
}

export type AuditSearchOptions = Partial<AuditSearchSettings>;

export const auditSearchDefaults: Readonly<AuditSearchSettings> = {
  pollsUntilDone: 2, finishAfterMs: 60_000, pageSize: 100, recordCountLimit: 50_000, maxUnfinishedQueries: 10, retentionDays: 180, retryAfterSeconds: 1,
};

export interface AuditSearchCounters {
  /** Queries created (201). */
  queriesCreated: number;
  /** GETs of a query answered 200. */
  polls: number;
  /** Record pages answered 200. */
  pages: number;
  /** Records in those pages. */
  records: number;
  /** Requests of this API answered 429. */
  throttled: number;
}

export function emptyAuditSearchCounters(): AuditSearchCounters {
  return { queriesCreated: 0, polls: 0, pages: 0, records: 0, throttled: 0 };
}

/** Microsoft's auditLogRecordType names (Graph's camelCase) of the RecordType integers; covers every one the corpus makes. */
export const recordTypeNames: Readonly<Record<number, string>> = {
  1: 'exchangeAdmin', 2: 'exchangeItem', 3: 'exchangeItemGroup', 4: 'sharePoint', 5: 'syntheticProbe', 6: 'sharePointFileOperation',
  7: 'oneDrive', 8: 'azureActiveDirectory', 9: 'azureActiveDirectoryAccountLogon', 10: 'dataCenterSecurityCmdlet', 11: 'complianceDLPSharePoint',
  12: 'sway', 13: 'complianceDLPExchange', 14: 'sharePointSharingOperation', 15: 'azureActiveDirectoryStsLogon', 18: 'securityComplianceCenterEOPCmdlet',
  19: 'exchangeAggregatedOperation', 20: 'powerBIAudit', 21: 'crm', 22: 'yammer', 24: 'discovery', 25: 'microsoftTeams', 28: 'threatIntelligence',
  29: 'mailSubmission', 30: 'microsoftFlow', 32: 'microsoftStream', 33: 'complianceDLPSharePointClassification', 35: 'project',
  36: 'sharePointListOperation', 40: 'securityComplianceAlerts', 43: 'mipLabel', 50: 'exchangeItemAggregated', 54: 'sharePointListItemOperation',
  57: 'microsoftTeamsAdmin', 63: 'dlpEndpoint', 64: 'airInvestigation', 65: 'quarantine', 66: 'microsoftForms', 107: 'complianceDLPExchangeClassification',
};
const knownRecordTypeNames = new Set(Object.values(recordTypeNames));

/** Graph's auditUserType names of the UserType integers. */
const userTypeNames = ['regular', 'reserved', 'admin', 'dcAdmin', 'system', 'application', 'servicePrincipal', 'customPolicy', 'systemPolicy', 'partnerTechnician', 'guest'];

export type AuditQueryStatus = 'notStarted' | 'running' | 'succeeded' | 'failed';

const filterNames = ['recordTypeFilters', 'serviceFilters', 'operationFilters', 'userPrincipalNameFilters', 'ipAddressFilters', 'objectIdFilters', 'administrativeUnitIdFilters'] as const;
type FilterName = typeof filterNames[number];
const bodyProperties = new Set<string>(['displayName', 'filterStartDateTime', 'filterEndDateTime', 'keywordFilter', ...filterNames]);

/** One record of a query's result: its blob and its place in the blob's records. */
interface RecordRef {
  readonly blob: BlobDescriptor;
  readonly position: number;
}

interface HeldRecord extends RecordRef {
  readonly contentType: ContentType;
  readonly record: RecordText;
}

interface AuditQuery {
  readonly id: string;
  readonly displayName: string | null;
  readonly start: Date;
  readonly end: Date;
  readonly filters: Readonly<Record<FilterName, readonly string[]>>;
  readonly keywordFilter: string | null;
  readonly createdAt: Date;
  readonly recordCountLimit: number;
  readonly fails: boolean;
  polls: number;
  /** Fixed when the query is first seen done. */
  result?: readonly RecordRef[];
}

/** The request as the router read it: `/graph/{version}/security/auditLog/queries[/{id}[/records]]`. */
export interface AuditSearchRequest {
  readonly method: string;
  readonly version: 'v1.0' | 'beta';
  readonly queryId: string | undefined;
  readonly records: boolean;
  readonly query: URLSearchParams;
  readonly body: string;
}

export interface AuditSearchContext {
  /** `${origin}/graph`: where the links point. */
  readonly graphRoot: string;
  readonly roles: readonly string[];
  readonly now: Date;
}

/** `"CreationTime"` as the service writes it (UTC without a zone) or with one, to epoch milliseconds. */
function instantOf(creationTime: string | undefined): number | undefined {
  if (creationTime === undefined) return undefined;
  const at = Date.parse(/(?:Z|[+-]\d{2}:\d{2})$/i.test(creationTime) ? creationTime : `${creationTime}Z`);
  return Number.isNaN(at) ? undefined : at;
}

/** Graph's DateTimeOffset form: ISO 8601 UTC, milliseconds only when there are some. */
function graphTime(at: number | Date): string {
  return new Date(at).toISOString().replace('.000Z', 'Z');
}

const dateTimeOffset = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})$/i;

/** Graph's auditData: the record's exact text with the `@odata.type` member spliced in first. */
export function auditDataOf(text: string): string {
  const open = text.indexOf('{') + 1;
  return `${text.slice(0, open)}"@odata.type":"#microsoft.graph.security.auditData",${text.slice(open)}`;
}

/** One auditLogRecord as Graph serves it, built around the record's exact text. */
function auditLogRecord(text: string): string {
  const record = JSON.parse(text) as Record<string, unknown>;
  const stringOf = (value: unknown) => (typeof value === 'string' ? value : null);
  const created = instantOf(stringOf(record['CreationTime']) ?? undefined);
  const head = {
    '@odata.type': '#microsoft.graph.security.auditLogRecord',
    id: record['Id'],
    createdDateTime: created === undefined ? null : graphTime(created),
    auditLogRecordType: typeof record['RecordType'] === 'number' ? (recordTypeNames[record['RecordType']] ?? 'unknownFutureValue') : null,
    operation: stringOf(record['Operation']),
    organizationId: stringOf(record['OrganizationId']),
    userType: typeof record['UserType'] === 'number' ? (userTypeNames[record['UserType']] ?? 'unknownFutureValue') : null,
    userId: stringOf(record['UserId']),
    service: stringOf(record['Workload']),
    objectId: stringOf(record['ObjectId']),
    userPrincipalName: stringOf(record['UserId']),
    clientIp: stringOf(record['ClientIP'] ?? record['ClientIPAddress'] ?? record['ActorIpAddress']),
    administrativeUnits: [],
  };
  return `${JSON.stringify(head).slice(0, -1)},"auditData":${auditDataOf(text)}}`;
}

function guidOf(seed: number, label: string): string {
  const hex = createHash('sha256').update(`${seed}|${label}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-9${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

export class AuditSearch {
  readonly #seed: number;
  readonly #corpus: () => Corpus;
  readonly #now: () => Date;
  readonly #count: (change: (counters: AuditSearchCounters) => void) => void;
  #settings: AuditSearchSettings;
  readonly #queries = new Map<string, AuditQuery>();
  #throttle = { next: 0, retryAfterSeconds: undefined as number | undefined };
  #failNext = 0;

  constructor(seed: number, corpus: () => Corpus, now: () => Date, options: AuditSearchOptions, count: (change: (counters: AuditSearchCounters) => void) => void) {
    this.#seed = seed;
    this.#corpus = corpus;
    this.#now = now;
    this.#count = count;
    this.#settings = { ...auditSearchDefaults, ...options };
  }

  /** The knobs in force now. */
  get settings(): Readonly<AuditSearchSettings> {
    return { ...this.#settings };
  }

  /** Changes some knobs from now on (a query keeps the recordCountLimit it was created with). */
  configure(options: AuditSearchOptions): void {
    this.#settings = { ...this.#settings, ...options };
  }

  /** The next `count` requests of this API answer 429 with Retry-After (default: the settings' retryAfterSeconds). */
  throttleNext(count: number, retryAfterSeconds?: number): void {
    this.#throttle = { next: count, retryAfterSeconds };
  }

  /** The next `count` queries created end `failed` instead of `succeeded`. */
  failNext(count: number): void {
    this.#failNext = count;
  }

  /** Every query created so far, as a GET of the collection shows it (no poll counted). */
  queries(): Array<Record<string, unknown>> {
    const at = this.#now();
    return [...this.#queries.values()].map((query) => this.#view(query, at));
  }

  /**
   * The ground truth: the exact text (as the Management Activity API serves it in that content type) of every
   * record the search holds now whose CreationTime is in [start, end), by Id; default range: the whole retention.
   */
  truth(contentType?: ContentType, range: { start?: Date; end?: Date } = {}): Map<string, Buffer> {
    const truth = new Map<string, Buffer>();
    for (const { record } of this.truthRecords(contentType, range)) truth.set(record.id, Buffer.from(record.text, 'utf8'));
    return truth;
  }

  /** The same lazily, each with its content type: for corpora too big for one Map. */
  *truthRecords(contentType?: ContentType, range: { start?: Date; end?: Date } = {}): Generator<{ contentType: ContentType; record: RecordText }> {
    const at = this.#now();
    const { start, end } = this.#reach(at, range.start ?? new Date(0), range.end ?? new Date(at.getTime() + 1));
    for (const held of this.#held(contentType ? [contentType] : contentTypes, start, end, at)) yield { contentType: held.contentType, record: held.record };
  }

  /** The part of [start, end) the search reaches at `at`. */
  #reach(at: Date, start: Date, end: Date): { start: Date; end: Date } {
    return { start: new Date(Math.max(start.getTime(), at.getTime() - this.#settings.retentionDays * day)), end };
  }

  /**
   * Every record held at `at` whose CreationTime is in [start, end), each Id once, in a stable order: the grid
   * blobs that can hold such records, by content type and index, then the blobs added at run time.
   */
  *#held(types: readonly ContentType[], start: Date, end: Date, at: Date): Generator<HeldRecord> {
    const corpus = this.#corpus();
    const inWindow = (record: RecordText) => {
      const time = instantOf(record.creationTime);
      return time !== undefined && time >= start.getTime() && time < end.getTime();
    };
    // Added blobs are in memory, their records' times are what a test gave, and one may repeat a grid record (which then wins).
    const added = new Map<string, HeldRecord>();
    for (const contentType of types) {
      for (const blob of corpus.addedBlobs(contentType)) {
        if (blob.contentCreated > at) continue;
        corpus.recordTexts(blob).forEach((record, position) => {
          if (inWindow(record) && !added.has(record.id)) added.set(record.id, { contentType, blob, position, record });
        });
      }
    }
    if (corpus.options.grid !== false && start < end) {
      const from = start.getTime() + nearestBeforeBlob;
      const to = Math.min(end.getTime() + furthestBeforeBlob, at.getTime() + 1);
      for (const contentType of from < to ? types : []) {
        const { first, last } = corpus.indexRange(new Date(from), new Date(to));
        for (let index = first; index <= last; index += 1) {
          const blob = corpus.blob(contentType, index);
          if (blob.contentCreated.getTime() < from || blob.contentCreated.getTime() >= to) continue;
          // A grid blob's records past recordsPerBlob repeat an earlier blob's: they are that blob's to hold.
          const records = corpus.recordTexts(blob).slice(0, corpus.options.recordsPerBlob);
          for (let position = 0; position < records.length; position += 1) {
            const record = records[position]!;
            if (!inWindow(record)) continue;
            added.delete(record.id);
            yield { contentType, blob, position, record };
          }
        }
      }
    }
    yield* added.values();
  }

  #status(query: AuditQuery, at: Date): AuditQueryStatus {
    const done = query.polls >= Math.max(1, this.#settings.pollsUntilDone) || at.getTime() - query.createdAt.getTime() >= this.#settings.finishAfterMs;
    if (done) return query.fails ? 'failed' : 'succeeded';
    return query.polls === 0 ? 'notStarted' : 'running';
  }

  /** The query's records, fixed the first time they are asked for once it has succeeded. */
  #result(query: AuditQuery): readonly RecordRef[] {
    if (query.result) return query.result;
    const { start, end } = this.#reach(query.createdAt, query.start, query.end);
    const result: RecordRef[] = [];
    for (const held of this.#held(contentTypes, start, end, query.createdAt)) {
      if (!matches(query, held.record.text)) continue;
      result.push({ blob: held.blob, position: held.position });
      if (result.length >= query.recordCountLimit) break;
    }
    query.result = result;
    return result;
  }

  #view(query: AuditQuery, at: Date): Record<string, unknown> {
    const status = this.#status(query, at);
    return {
      id: query.id,
      displayName: query.displayName,
      filterStartDateTime: graphTime(query.start),
      filterEndDateTime: graphTime(query.end),
      recordTypeFilters: query.filters.recordTypeFilters,
      keywordFilter: query.keywordFilter,
      serviceFilters: query.filters.serviceFilters,
      operationFilters: query.filters.operationFilters,
      userPrincipalNameFilters: query.filters.userPrincipalNameFilters,
      ipAddressFilters: query.filters.ipAddressFilters,
      objectIdFilters: query.filters.objectIdFilters,
      administrativeUnitIdFilters: query.filters.administrativeUnitIdFilters,
      status,
      recordCountLimit: query.recordCountLimit,
      isRecordCountLimitEnabled: true,
      approximateReturnedRecordCount: status === 'succeeded' ? this.#result(query).length : null,
    };
  }

  #unfinished(at: Date): number {
    let count = 0;
    for (const query of this.#queries.values()) {
      const status = this.#status(query, at);
      if (status === 'notStarted' || status === 'running') count += 1;
    }
    return count;
  }

  #tooMany(at: Date, message: string, retryAfterSeconds: number): HttpAnswer {
    this.#count((counters) => { counters.throttled += 1; });
    return graphError(429, 'TooManyRequests', message, at, { 'Retry-After': String(retryAfterSeconds) });
  }

  /** Answers one request of this API, the Graph token already checked for signature, audience and expiry. */
  handle(request: AuditSearchRequest, context: AuditSearchContext): HttpAnswer {
    const { now } = context;
    if (!context.roles.includes(graphAuditSearchPermission)) {
      return graphError(403, 'Forbidden', `Missing role permissions on the request. API requires one of '${graphAuditSearchPermission}'. Roles on the request '${context.roles.join(',')}'.`, now);
    }
    if (this.#throttle.next > 0) {
      this.#throttle.next -= 1;
      return this.#tooMany(now, 'Too many requests; please try again later.', this.#throttle.retryAfterSeconds ?? this.#settings.retryAfterSeconds);
    }
    const base = `${context.graphRoot}/${request.version}`;
    const notAllowed = graphError(405, 'BadRequest', `The HTTP method '${request.method}' is not allowed for this resource.`, now);
    if (request.queryId === undefined) {
      if (request.method === 'POST') return this.#create(request.body, base, now);
      if (request.method !== 'GET') return notAllowed;
      return { status: 200, body: { '@odata.context': `${base}/$metadata#security/auditLog/queries`, value: [...this.#queries.values()].map((query) => this.#view(query, now)) } };
    }
    if (request.method !== 'GET') return notAllowed;
    const query = this.#queries.get(request.queryId);
    if (!query) return graphError(404, 'NotFound', `The audit log query '${request.queryId}' was not found.`, now);
    if (request.records) return this.#page(query, request.query, base, now);
    query.polls += 1;
    this.#count((counters) => { counters.polls += 1; });
    return { status: 200, body: { '@odata.context': `${base}/$metadata#security/auditLog/queries/$entity`, ...this.#view(query, now) } };
  }

  #create(body: string, base: string, now: Date): HttpAnswer {
    const invalid = (message: string) => graphError(400, 'BadRequest', message, now);
    let fields: unknown;
    try { fields = JSON.parse(body); } catch { return invalid('Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format.'); }
    if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) return invalid('The request body must be a JSON object.');
    const given = fields as Record<string, unknown>;
    const unknown = Object.keys(given).find((key) => !bodyProperties.has(key) && !key.startsWith('@odata.'));
    if (unknown !== undefined) return invalid(`The property '${unknown}' does not exist on type 'microsoft.graph.security.auditLogQuery'. Make sure to only use property names that are defined by the type.`);
    const time = (name: 'filterStartDateTime' | 'filterEndDateTime') => {
      const value = given[name];
      return typeof value === 'string' && dateTimeOffset.test(value) && !Number.isNaN(Date.parse(value)) ? new Date(Date.parse(value)) : undefined;
    };
    const start = time('filterStartDateTime');
    const end = time('filterEndDateTime');
    if (!start || !end) return invalid('filterStartDateTime and filterEndDateTime are required, as DateTimeOffset values (e.g. 2026-11-20T00:00:00Z).');
    if (start >= end) return invalid('filterEndDateTime must be later than filterStartDateTime.');
    const filters = {} as Record<FilterName, string[]>;
    for (const name of filterNames) {
      const value = given[name] ?? [];
      if (!Array.isArray(value) || value.some((item) => typeof item !== 'string')) return invalid(`${name} must be a collection of strings.`);
      filters[name] = value as string[];
    }
    const unknownType = filters.recordTypeFilters.find((name) => !knownRecordTypeNames.has(name));
    if (unknownType !== undefined) return invalid(`Requested value '${unknownType}' was not found in the enum 'microsoft.graph.security.auditLogRecordType'.`);
    const keyword = given['keywordFilter'] ?? null;
    const displayName = given['displayName'] ?? null;
    if ((keyword !== null && typeof keyword !== 'string') || (displayName !== null && typeof displayName !== 'string')) return invalid('displayName and keywordFilter must be strings.');
    if (this.#unfinished(now) >= this.#settings.maxUnfinishedQueries) {
      return this.#tooMany(now, `Too many audit log queries in progress for this tenant (at most ${this.#settings.maxUnfinishedQueries}); try again later.`, this.#settings.retryAfterSeconds);
    }
    const fails = this.#failNext > 0;
    if (fails) this.#failNext -= 1;
    const query: AuditQuery = {
      id: guidOf(this.#seed, `audit-query|${this.#queries.size}`), displayName, start, end, filters, keywordFilter: keyword,
      createdAt: now, recordCountLimit: this.#settings.recordCountLimit, fails, polls: 0,
    };
    this.#queries.set(query.id, query);
    this.#count((counters) => { counters.queriesCreated += 1; });
    return { status: 201, headers: { Location: `${base}/security/auditLog/queries/${query.id}` }, body: { '@odata.context': `${base}/$metadata#security/auditLog/queries/$entity`, ...this.#view(query, now) } };
  }

  #page(query: AuditQuery, params: URLSearchParams, base: string, now: Date): HttpAnswer {
    const status = this.#status(query, now);
    if (status !== 'succeeded') return graphError(400, 'BadRequest', `The audit log query '${query.id}' has status '${status}': its records can be read once it has succeeded.`, now);
    const result = this.#result(query);
    const token = params.get('$skiptoken');
    let offset = 0;
    if (token !== null) {
      const [id, at] = Buffer.from(token, 'base64url').toString('utf8').split('|');
      offset = Number(at);
      if (id !== query.id || !/^\d+$/.test(at ?? '') || offset > result.length) return graphError(400, 'BadRequest', `Invalid $skiptoken '${token}'.`, now);
    }
    const size = Math.max(1, this.#settings.pageSize);
    const corpus = this.#corpus();
    const texts = new Map<BlobDescriptor, RecordText[]>();
    const page = result.slice(offset, offset + size).map(({ blob, position }) => {
      const records = texts.get(blob) ?? corpus.recordTexts(blob);
      texts.set(blob, records);
      return auditLogRecord(records[position]!.text);
    });
    const records = `${base}/security/auditLog/queries/${query.id}/records`;
    const next = offset + size < result.length ? `${records}?$skiptoken=${Buffer.from(`${query.id}|${offset + size}`).toString('base64url')}` : undefined;
    this.#count((counters) => { counters.pages += 1; counters.records += page.length; });
    // Built as text so that each auditData carries the record's exact bytes.
    const body = `{"@odata.context":${JSON.stringify(`${base}/$metadata#security/auditLog/queries('${query.id}')/records`)},"value":[${page.join(',')}]${next ? `,"@odata.nextLink":${JSON.stringify(next)}` : ''}}`;
    return { status: 200, body, records: page.length };
  }
}

/** Whether a record's text passes a query's filters (the time filter is the caller's). */
function matches(query: AuditQuery, text: string): boolean {
  const { filters, keywordFilter } = query;
  const active = filterNames.some((name) => filters[name].length > 0);
  if (!active && !keywordFilter) return true;
  if (filters.administrativeUnitIdFilters.length > 0) return false;
  if (keywordFilter && !text.toLowerCase().includes(keywordFilter.toLowerCase())) return false;
  if (!active) return true;
  const record = JSON.parse(text) as Record<string, unknown>;
  const among = (list: readonly string[], value: unknown) => list.length === 0 || (typeof value === 'string' && list.some((item) => item.toLowerCase() === value.toLowerCase()));
  const recordType = typeof record['RecordType'] === 'number' ? recordTypeNames[record['RecordType']] : undefined;
  return among(filters.serviceFilters, record['Workload'])
    && among(filters.recordTypeFilters, recordType)
    && among(filters.operationFilters, record['Operation'])
    && among(filters.userPrincipalNameFilters, record['UserId'])
    && among(filters.ipAddressFilters, record['ClientIP'] ?? record['ClientIPAddress'] ?? record['ActorIpAddress'])
    && among(filters.objectIdFilters, record['ObjectId']);
}
