/**
 * Microsoft Graph's service announcements for one tenant of the stand-in (`/admin/serviceAnnouncement/…`, v1.0):
 * issues (serviceHealthIssue: incidents and advisories, each with its posts), messages (serviceUpdateMessage,
 * message centre) and every service's health overview (serviceHealth), in the documented shapes. Incidents change
 * over time (a test updates one, or `evolve` moves the open ones a step on), each change a new lastModifiedDateTime;
 * every version ever served is kept, as the ground truth of what a connector that collects by change must deliver.
 *
 * The HTTP side (`handleGraph`) is as strict as Graph: `$filter` on lastModifiedDateTime only (ge/gt, else 400),
 * pages of `Prefer: odata.maxpagesize` (default 100) with `@odata.nextLink` (`$skip`), 403 without the application
 * permission the resource needs (ServiceHealth.Read.All, ServiceMessage.Read.All), 429 with Retry-After on demand.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { HttpAnswer } from './identity.ts';

const minute = 60_000;
const hour = 60 * minute;
const day = 24 * hour;

export type AnnouncementKind = 'issues' | 'messages';
export type GraphResource = AnnouncementKind | 'healthOverviews';

/** The application permission each resource needs (Graph's permissions reference). */
export const graphRoleOf: Readonly<Record<GraphResource, string>> = {
  healthOverviews: 'ServiceHealth.Read.All',
  issues: 'ServiceHealth.Read.All',
  messages: 'ServiceMessage.Read.All',
};

interface Post {
  createdDateTime: string;
  postType: 'regular' | 'quick' | 'strategic';
  description: { contentType: 'html'; content: string };
}

/** serviceHealthIssue, in the order of Graph's list example. */
export interface Issue {
  startDateTime: string;
  endDateTime: string | null;
  lastModifiedDateTime: string;
  title: string;
  id: string;
  impactDescription: string;
  classification: 'incident' | 'advisory';
  origin: 'microsoft' | 'thirdParty' | 'customer';
  status: string;
  service: string;
  feature: string;
  featureGroup: string;
  isResolved: boolean;
  highImpact: boolean | null;
  details: Array<{ name: string; value: string }>;
  posts: Post[];
}

/** serviceUpdateMessage, in the order of Graph's list example. */
export interface Message {
  startDateTime: string;
  endDateTime: string | null;
  lastModifiedDateTime: string;
  title: string;
  id: string;
  category: 'preventOrFixIssue' | 'planForChange' | 'stayInformed';
  severity: 'normal' | 'high' | 'critical';
  tags: string[];
  isMajorChange: boolean;
  actionRequiredByDateTime: string | null;
  services: string[];
  expiryDateTime: string | null;
  hasAttachments: boolean;
  viewPoint: null;
  details: Array<{ name: string; value: string }>;
  body: { contentType: 'html'; content: string };
}

/** The services every tenant's overview lists (Graph's names and ids). */
const services: ReadonlyArray<{ id: string; service: string }> = [
  { id: 'Exchange', service: 'Exchange Online' },
  { id: 'SharePoint', service: 'SharePoint Online' },
  { id: 'microsoftteams', service: 'Microsoft Teams' },
  { id: 'OSDPPlatform', service: 'Microsoft 365 suite' },
  { id: 'MicrosoftPurview', service: 'Microsoft Purview' },
  { id: 'OneDriveForBusiness', service: 'OneDrive for Business' },
];

/** How an open incident moves on, one step per `evolve` or update without a status. */
const progression = ['investigating', 'serviceDegradation', 'restoringService', 'extendedRecovery', 'serviceRestored'];

function iso(at: Date): string {
  return at.toISOString();
}

function html(text: string): { contentType: 'html'; content: string } {
  return { contentType: 'html', content: `<p>${text}</p>` };
}

export interface GraphFaults {
  /** The next this many Graph requests answer 429 with Retry-After. */
  throttleNext: number;
  retryAfterSeconds: number;
}

export class ServiceAnnouncements {
  readonly issues = new Map<string, Issue>();
  readonly messages = new Map<string, Message>();
  /** Every version ever served, by `<id>@<lastModifiedDateTime>`, as the bytes a page carries it in. */
  readonly versions = new Map<string, { kind: AnnouncementKind; id: string; bytes: Buffer }>();
  readonly faults: GraphFaults = { throttleNext: 0, retryAfterSeconds: 1 };
  #sequence: number;

  constructor(seed: number, startedAt: Date) {
    this.#sequence = 200_000 + (createHash('sha256').update(`${seed}|announcements`).digest().readUInt32BE(0) % 700_000);
    const at = (hoursBefore: number) => new Date(startedAt.getTime() - hoursBefore * hour);
    this.addIssue({ prefix: 'EX', service: 'Exchange Online', feature: 'E-Mail and calendar access', featureGroup: 'E-Mail timely delivery', classification: 'incident', title: 'Some users may be unable to send or receive email', at: at(3) });
    this.addIssue({ prefix: 'PV', service: 'Microsoft Purview', feature: 'Audit', featureGroup: 'Audit (Standard)', classification: 'advisory', title: 'Audit log search results may be delayed', at: at(30) });
    const old = this.addIssue({ prefix: 'SP', service: 'SharePoint Online', feature: 'Search', featureGroup: 'SharePoint Features', classification: 'incident', title: 'Users may see stale search results', at: at(60) });
    this.updateIssue(old.id, at(50), { status: 'serviceRestored', text: 'We have confirmed the fix resolved the issue.' });
    this.addMessage({ services: ['Exchange Online'], title: 'Retirement of basic authentication for SMTP AUTH', category: 'planForChange', at: at(100) });
    this.addMessage({ services: ['Microsoft Purview'], title: 'Audit (Standard) retention changes', category: 'stayInformed', at: at(20) });
    this.addMessage({ services: ['Microsoft Teams', 'SharePoint Online'], title: '(Updated) New meeting recap experience', category: 'stayInformed', at: at(5) });
  }

  #id(prefix: string): string {
    this.#sequence += 1;
    return `${prefix}${this.#sequence}`;
  }

  #record(kind: AnnouncementKind, item: Issue | Message): void {
    this.versions.set(`${item.id}@${new Date(item.lastModifiedDateTime).toISOString()}`, { kind, id: item.id, bytes: Buffer.from(JSON.stringify(item), 'utf8') });
  }

  addIssue(fields: { prefix?: string; service: string; feature?: string; featureGroup?: string; classification?: 'incident' | 'advisory'; title: string; at: Date }): Issue {
    const issue: Issue = {
      startDateTime: iso(fields.at), endDateTime: null, lastModifiedDateTime: iso(fields.at), title: fields.title, id: this.#id(fields.prefix ?? 'EX'),
      impactDescription: `${fields.title}.`, classification: fields.classification ?? 'incident', origin: 'microsoft', status: 'investigating',
      service: fields.service, feature: fields.feature ?? 'General', featureGroup: fields.featureGroup ?? 'General', isResolved: false, highImpact: null,
      details: [],
      posts: [{ createdDateTime: iso(fields.at), postType: 'regular', description: html(`Title: ${fields.title}<br>User impact: ${fields.title}. Current status: We're investigating.`) }],
    };
    this.issues.set(issue.id, issue);
    this.#record('issues', issue);
    return issue;
  }

  /** A new post on the issue, its status moved (given, or one step on), lastModifiedDateTime now `at`. */
  updateIssue(id: string, at: Date, change: { status?: string; text?: string } = {}): Issue {
    const issue = this.issues.get(id);
    if (!issue) throw new Error(`no issue ${id}`);
    if (at.getTime() <= Date.parse(issue.lastModifiedDateTime)) throw new Error(`issue ${id} was last modified at ${issue.lastModifiedDateTime}, not before ${iso(at)}`);
    const status = change.status ?? progression[Math.min(progression.indexOf(issue.status) + 1, progression.length - 1)]!;
    issue.status = status;
    issue.isResolved = status === 'serviceRestored' || status === 'resolved' || status === 'falsePositive';
    if (issue.isResolved) issue.endDateTime = iso(at);
    issue.lastModifiedDateTime = iso(at);
    issue.posts.push({ createdDateTime: iso(at), postType: 'regular', description: html(change.text ?? `Current status: ${status}. Next update by ${iso(new Date(at.getTime() + 2 * hour))}.`) });
    this.#record('issues', issue);
    return issue;
  }

  addMessage(fields: { services: string[]; title: string; category?: Message['category']; at: Date }): Message {
    const message: Message = {
      startDateTime: iso(fields.at), endDateTime: iso(new Date(fields.at.getTime() + 90 * day)), lastModifiedDateTime: iso(fields.at), title: fields.title,
      id: this.#id('MC'), category: fields.category ?? 'stayInformed', severity: 'normal', tags: ['Admin impact'], isMajorChange: false,
      actionRequiredByDateTime: null, services: fields.services, expiryDateTime: null, hasAttachments: false, viewPoint: null,
      details: [{ name: 'ExternalLink', value: 'https://learn.microsoft.com/microsoft-365/' }], body: html(`${fields.title}: what you need to do to prepare.`),
    };
    this.messages.set(message.id, message);
    this.#record('messages', message);
    return message;
  }

  /** Every open incident moves one step on (a new post), as a real outage does between polls. */
  evolve(at: Date): Issue[] {
    return [...this.issues.values()].filter((issue) => !issue.isResolved).map((issue) => this.updateIssue(issue.id, at));
  }

  /** A service is as degraded as its worst open issue says; operational without one. */
  overviews(): Array<{ service: string; status: string; id: string }> {
    return services.map(({ id, service }) => {
      const open = [...this.issues.values()].filter((issue) => issue.service === service && !issue.isResolved);
      return { service, status: open.at(-1)?.status ?? 'serviceOperational', id };
    });
  }
}

export function graphError(status: number, code: string, message: string, now: Date, headers: Record<string, string> = {}): HttpAnswer {
  return {
    status, headers,
    body: { error: { code, message, innerError: { date: now.toISOString().slice(0, 19), 'request-id': randomUUID(), 'client-request-id': randomUUID() } } },
  };
}

export interface GraphContext {
  /** `${origin}/graph`: the resource its tokens name, and where its links point. */
  readonly graphRoot: string;
  readonly roles: readonly string[];
  readonly now: Date;
  readonly pageSize: number;
  /** `Prefer` request header. */
  readonly prefer: string | undefined;
}

/** `GET {graphRoot}/v1.0/admin/serviceAnnouncement/{resource}`, the token already checked. */
export function handleGraph(announcements: ServiceAnnouncements, resource: GraphResource, query: URLSearchParams, context: GraphContext): HttpAnswer {
  const { now } = context;
  const role = graphRoleOf[resource];
  if (!context.roles.includes(role)) {
    return graphError(403, 'Forbidden', `Missing role permissions on the request. API requires one of '${role}'. Roles on the request '${context.roles.join(',')}'.`, now);
  }
  if (announcements.faults.throttleNext > 0) {
    announcements.faults.throttleNext -= 1;
    return graphError(429, 'TooManyRequests', 'Too many requests; please try again later.', now, { 'Retry-After': String(announcements.faults.retryAfterSeconds) });
  }
  let items: unknown[];
  if (resource === 'healthOverviews') {
    if (query.has('$filter')) return graphError(400, 'BadRequest', 'Invalid filter clause', now);
    items = announcements.overviews();
  } else {
    const all: Array<Issue | Message> = [...(resource === 'issues' ? announcements.issues : announcements.messages).values()];
    const filter = query.get('$filter');
    let since: { at: number; inclusive: boolean } | undefined;
    if (filter !== null) {
      const clause = /^lastModifiedDateTime (ge|gt) (\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2}))$/.exec(filter.trim());
      if (!clause) return graphError(400, 'BadRequest', `Invalid filter clause: ${filter}`, now);
      since = { at: Date.parse(clause[2]!), inclusive: clause[1] === 'ge' };
    }
    items = all
      .filter((item) => !since || (since.inclusive ? Date.parse(item.lastModifiedDateTime) >= since.at : Date.parse(item.lastModifiedDateTime) > since.at))
      .sort((a, b) => a.id.localeCompare(b.id));
  }
  const asked = /odata\.maxpagesize=(\d+)/i.exec(context.prefer ?? '')?.[1];
  const size = Math.min(asked ? Math.max(1, Number(asked)) : context.pageSize, 1000);
  const skip = Number(query.get('$skip') ?? '0');
  if (!Number.isSafeInteger(skip) || skip < 0) return graphError(400, 'BadRequest', `Invalid $skip value '${query.get('$skip')}'`, now);
  const page = items.slice(skip, skip + size);
  const base = `${context.graphRoot}/v1.0/admin/serviceAnnouncement/${resource}`;
  let nextLink: string | undefined;
  if (skip + size < items.length) {
    const next = new URLSearchParams(query);
    next.set('$skip', String(skip + size));
    nextLink = `${base}?${next.toString()}`;
  }
  // Built as text so each item's bytes are exactly those the versions map holds.
  const body = `{"@odata.context":${JSON.stringify(`${context.graphRoot}/v1.0/$metadata#admin/serviceAnnouncement/${resource}`)}${nextLink ? `,"@odata.nextLink":${JSON.stringify(nextLink)}` : ''},"value":[${page.map((item) => JSON.stringify(item)).join(',')}]}`;
  return { status: 200, body, records: page.length };
}
