/**
 * The Office 365 Management Activity API under /api/v1.0/{tenant}/activity/feed/, enforcing the documented
 * rules (../shared/API-NOTES.md and Microsoft's reference) and answering with the documented error bodies and
 * messages. Nothing friendlier than the real service.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { isContentType, type ContentType } from '../../contract/content-types.ts';
import { blobBody, type BlobDescriptor, type Corpus } from './corpus.ts';
import { readAccessToken, type HttpAnswer, type TokenClaims } from './identity.ts';
import type { FeedRoute } from './faults.ts';
import type { ContentEntry, Validation, Webhook, WebhookPoster } from './webhooks.ts';

const hour = 3_600_000;
const day = 24 * hour;
const zeroGuid = '00000000-0000-0000-0000-000000000000';
const guidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const readRole = 'ActivityFeed.Read';
export const readDlpRole = 'ActivityFeed.ReadDlp';

export interface SubscriptionRecord {
  status: 'enabled' | 'disabled';
  webhook: Webhook | null;
  /** Periods the subscription was stopped: content that became available then is never served. */
  gaps: Array<{ from: Date; to: Date | undefined }>;
}

export interface FeedContext {
  readonly tenantId: string;
  readonly clientId: string;
  readonly apiRoot: string;
  readonly corpus: Corpus;
  readonly subscriptions: Map<ContentType, SubscriptionRecord>;
  readonly now: Date;
  readonly pageSize: number;
  readonly auditingEnabled: boolean;
  readonly publisher: string;
  readonly roles: readonly string[];
  readonly pageKey: string;
  readonly webhooks: WebhookPoster;
  readonly onWindowRejected: () => void;
}

export function afError(status: number, code: string, message: string): HttpAnswer {
  return { status, body: { error: { code, message } } };
}

export function routeOf(path: string): FeedRoute {
  if (path.startsWith('audit/')) return 'audit';
  const known: FeedRoute[] = ['subscriptions/start', 'subscriptions/stop', 'subscriptions/list', 'subscriptions/content', 'subscriptions/notifications', 'resources/dlpSensitiveTypes'];
  return known.find((route) => route === path) ?? 'other';
}

/** The three documented formats, all UTC: YYYY-MM-DD, YYYY-MM-DDTHH:MM, YYYY-MM-DDTHH:MM:SS. */
export function parseApiTime(value: string): Date | undefined {
  const match = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2}))?)?$/.exec(value);
  if (!match) return undefined;
  const [, y, mo, d, h = '00', mi = '00', s = '00'] = match;
  if (Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) return undefined;
  const date = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)));
  return Number.isNaN(date.getTime()) || date.toISOString().slice(0, 10) !== `${y}-${mo}-${d}` ? undefined : date;
}

/** Whether a blob can be served to a subscriber now: listed already, not expired, not in a stopped period. */
export function servable(blob: BlobDescriptor, subscription: SubscriptionRecord | undefined, now: Date): boolean {
  if (blob.visibleAt > now || blob.contentCreated > now || blob.contentExpiration <= now) return false;
  return !(subscription?.gaps ?? []).some((gap) => blob.contentCreated >= gap.from && (gap.to === undefined || blob.contentCreated < gap.to));
}

export function contentEntry(apiRoot: string, tenantId: string, blob: BlobDescriptor): ContentEntry {
  return {
    contentType: blob.contentType,
    contentId: blob.contentId,
    contentUri: `${apiRoot}/api/v1.0/${tenantId}/activity/feed/audit/${blob.contentId}`,
    contentCreated: blob.contentCreated.toISOString(),
    contentExpiration: blob.contentExpiration.toISOString(),
  };
}

// The real nextPage looks like "2015101900R022885001761"; ours carries offset and window, signed so a forged or
// edited one is refused.
function signPage(key: string, offset: number, start: number, end: number): string {
  const body = `${offset}R${start.toString(36)}R${end.toString(36)}`;
  return `${body}R${createHmac('sha256', key).update(body).digest('hex').slice(0, 16)}`;
}

function readPage(key: string, token: string): { offset: number; start: number; end: number } | undefined {
  const [offset, start, end, mac, extra] = token.split('R');
  if (offset === undefined || start === undefined || end === undefined || mac === undefined || extra !== undefined) return undefined;
  if (!/^\d+$/.test(offset)) return undefined;
  if (signPage(key, Number(offset), parseInt(start, 36), parseInt(end, 36)) !== token) return undefined;
  return { offset: Number(offset), start: parseInt(start, 36), end: parseInt(end, 36) };
}

/** What a tenant without unified audit logging answers: a 400 whose code is a broken-up .NET exception. */
function auditingOff(operation: string, context: FeedContext, contentType: string): HttpAnswer {
  const correlation = randomUUID();
  const publisher = context.publisher || zeroGuid;
  return afError(400,
    `${operation} [CorrId=${correlation}][TenantId=${context.tenantId},ContentType=${contentType},ApplicationId=${context.clientId},PublisherId=${publisher}][AppId`,
    `${context.clientId.slice(1)}] failed. Exception: Microsoft.Office.Compliance.Audit.DataServiceException: Tenant ${context.tenantId} does not exist.\r\n   at Microsoft.Office.Compliance.Audit.API.AzureManager.<GetSubscriptionTableClientForTenantAsync>d__52.MoveNext()\r\n--- End of stack trace from previous location where exception was thrown ---\r\n   at System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw()\r\n   at System.Runtime.CompilerServices.TaskAwaiter.HandleNonSuccessAndDebuggerNotification(Task task)\r\n   at Microsoft.Office.Compliance.Audit.API.AzureManager.<GetAPISubscriptionAsync>d__23.MoveNext()`);
}

const unauthorized: HttpAnswer = { status: 401, body: { Message: 'Authorization has been denied for this request.' }, headers: { 'WWW-Authenticate': 'Bearer' } };

/**
 * Checks the bearer token: signature, expiry, revocation, audience, then the tenant. Returns the claims or the refusal.
 * `generationOf` gives the token generation of a served tenant; a token whose tenant is not served (or no longer) is
 * refused like a revoked one.
 */
export function authenticate(
  authorization: string | undefined, urlTenant: string,
  check: { signingKey: string; apiRoot: string; now: Date; generationOf: (tenantId: string) => number | undefined },
): { claims: TokenClaims } | { refusal: HttpAnswer } {
  const token = /^Bearer (\S+)$/i.exec(authorization ?? '')?.[1];
  const claims = token ? readAccessToken(token, check.signingKey) : undefined;
  if (!claims) return { refusal: unauthorized };
  const seconds = check.now.getTime() / 1000;
  if (claims.exp <= seconds || claims.nbf > seconds + 300) return { refusal: unauthorized };
  const generation = check.generationOf(claims.tid);
  if (generation === undefined || claims.gen < generation || claims.aud !== check.apiRoot) return { refusal: unauthorized };
  if (!guidPattern.test(urlTenant)) return { refusal: afError(400, 'AF20013', `The tenant ID passed in the URL (${urlTenant}) is not a valid GUID.`) };
  if (claims.tid.toLowerCase() !== urlTenant.toLowerCase()) {
    return { refusal: afError(401, 'AF20010', `The tenant ID passed in the URL (${urlTenant}) does not match the tenant ID passed in the access token (${claims.tid}).`) };
  }
  return { claims };
}

function permissionRefusal(context: FeedContext, role: string): HttpAnswer | undefined {
  if (context.roles.includes(role)) return undefined;
  return afError(401, 'AF10001', `The permission set (${context.roles.join(' ')}) sent in the request did not include the expected permission ${role}.`);
}

function roleFor(contentType: ContentType): string {
  return contentType === 'DLP.All' ? readDlpRole : readRole;
}

function subscriptionRefusal(subscription: SubscriptionRecord | undefined): HttpAnswer | undefined {
  if (!subscription) return afError(400, 'AF20022', 'No subscription found for the specified content type.');
  if (subscription.status !== 'enabled') return afError(400, 'AF20023', 'The subscription was disabled by a tenant admin.');
  return undefined;
}

type Window = { start: Date; end: Date } | { refusal: HttpAnswer };

function timeWindow(query: URLSearchParams, context: FeedContext): Window {
  const startParam = query.get('startTime');
  const endParam = query.get('endTime');
  if (startParam === null && endParam === null) return { start: new Date(context.now.getTime() - day), end: context.now };
  const start = startParam === null ? undefined : parseApiTime(startParam);
  const end = endParam === null ? undefined : parseApiTime(endParam);
  if (!start || !end || end <= start || end.getTime() - start.getTime() > day || start.getTime() < context.now.getTime() - 7 * day) {
    context.onWindowRejected();
    return { refusal: afError(400, 'AF20055', 'Start time and end time must both be specified (or both omitted) and must be less than or equal to 24 hours apart, with the start time no more than 7 days in the past.') };
  }
  return { start, end };
}

/** One page of a listing, with NextPageUri carrying the same query plus the signed page marker. */
function paged<T>(items: T[], query: URLSearchParams, window: { start: Date; end: Date }, path: string, context: FeedContext): HttpAnswer {
  let offset = 0;
  const nextPage = query.get('nextPage');
  if (nextPage !== null) {
    const page = readPage(context.pageKey, nextPage);
    if (!page || page.start !== window.start.getTime() || page.end !== window.end.getTime()) {
      return afError(400, 'AF20031', `Invalid nextPage Input: ${nextPage}.`);
    }
    offset = page.offset;
  }
  const headers: Record<string, string> = {};
  if (offset + context.pageSize < items.length) {
    const next = new URLSearchParams(query);
    // Like the service: a listing without a window pages through the 24 hours before the first request.
    next.set('startTime', window.start.toISOString().slice(0, 19));
    next.set('endTime', window.end.toISOString().slice(0, 19));
    next.set('nextPage', signPage(context.pageKey, offset + context.pageSize, window.start.getTime(), window.end.getTime()));
    headers['NextPageUri'] = `${context.apiRoot}/api/v1.0/${context.tenantId}/activity/feed/${path}?${next.toString()}`;
  }
  return { status: 200, body: items.slice(offset, offset + context.pageSize), headers };
}

function sameWebhook(a: Webhook | null, b: Webhook | null): boolean {
  return a === b || (a !== null && b !== null && a.address === b.address && a.authId === b.authId && a.expiration === b.expiration);
}

async function start(contentType: ContentType, body: string, context: FeedContext): Promise<HttpAnswer> {
  let webhook: Webhook | null = null;
  if (body.trim() !== '') {
    let parsed: { webhook?: { address?: unknown; authId?: unknown; expiration?: unknown } | null };
    try { parsed = JSON.parse(body); } catch { return afError(400, 'AF20002', 'Invalid parameter type: webhook. Expected type: object'); }
    const requested = parsed?.webhook;
    if (requested) {
      if (typeof requested.address !== 'string' || requested.address === '') return afError(400, 'AF20001', 'Missing parameter: address.');
      const expiration = typeof requested.expiration === 'string' && requested.expiration !== '' ? requested.expiration : null;
      if (expiration !== null && !(new Date(expiration).getTime() > context.now.getTime())) {
        return afError(400, 'AF20003', `Expiration ${expiration} provided is set to past date and time.`);
      }
      webhook = { status: 'enabled', address: requested.address, authId: typeof requested.authId === 'string' && requested.authId !== '' ? requested.authId : null, expiration };
    }
  }
  const existing = context.subscriptions.get(contentType);
  if (existing?.status === 'enabled' && sameWebhook(existing.webhook, webhook)) {
    return afError(400, 'AF20024', 'The subscription is already enabled. No property change.');
  }
  if (webhook) {
    // If validation fails the subscription is not created, and an existing one stays as it was.
    const validation: Validation = await context.webhooks.validate(webhook.address, webhook.authId);
    if (!validation.ok) return afError(400, 'AF20021', `The webhook endpoint {${webhook.address}) could not be validated. ${validation.reason}`);
  }
  const record: SubscriptionRecord = existing ?? { status: 'enabled', webhook: null, gaps: [] };
  if (record.status === 'disabled') {
    const open = record.gaps.at(-1);
    if (open && open.to === undefined) open.to = context.now;
  }
  record.status = 'enabled';
  record.webhook = webhook;
  context.subscriptions.set(contentType, record);
  return { status: 200, body: { contentType, status: 'enabled', webhook } };
}

const sensitiveTypes = [
  { id: '50842eb7-edc8-4019-85dd-5a5c1f2bb085', name: 'Credit Card Number' },
  { id: '0e9b3178-9678-47dd-a509-37222ca96b42', name: 'EU Debit Card Number' },
  { id: 'a44669fe-0d48-453d-a9b1-2cc83f2cba77', name: 'U.S. Social Security Number (SSN)' },
  { id: 'e55e2a32-f92d-4985-a35d-a0b269eb687b', name: 'International Banking Account Number (IBAN)' },
  { id: 'cb353f78-2b72-4c3c-8827-92ebe4f69fdf', name: 'ABA Routing Number' },
  { id: '178ec42a-18b4-47cc-85c7-d62c92fd67f8', name: 'U.S. / U.K. Passport Number' },
];

function dlpSensitiveTypes(acceptLanguage: string | undefined): HttpAnswer {
  if (acceptLanguage !== undefined && acceptLanguage.trim() !== '') {
    if (acceptLanguage.includes(',')) return afError(400, 'AF20053', 'Only one language may be present in the Accept-Language header.');
    if (!/^[a-z]{1,8}(-[a-z0-9]{1,8})*$/i.test(acceptLanguage.trim())) return afError(400, 'AF20054', 'Invalid syntax in Accept-Language header.');
  }
  return { status: 200, body: sensitiveTypes };
}

export async function handleFeed(
  method: string, path: string, query: URLSearchParams, body: string, headers: { acceptLanguage?: string }, context: FeedContext,
): Promise<HttpAnswer> {
  const route = routeOf(path);
  const notAllowed = afError(405, 'AF20001', `The requested resource does not support http method '${method}'.`);

  if (route === 'resources/dlpSensitiveTypes') {
    if (method !== 'GET') return notAllowed;
    return permissionRefusal(context, readDlpRole) ?? dlpSensitiveTypes(headers.acceptLanguage);
  }

  if (route === 'subscriptions/list') {
    if (method !== 'GET') return notAllowed;
    if (!context.auditingEnabled) return auditingOff('ListSubscriptions', context, '');
    if (!context.roles.includes(readRole) && !context.roles.includes(readDlpRole)) return permissionRefusal(context, readRole)!;
    return { status: 200, body: [...context.subscriptions].map(([contentType, s]) => ({ contentType, status: s.status, webhook: s.webhook })) };
  }

  if (route === 'audit') {
    if (method !== 'GET') return notAllowed;
    const contentId = decodeURIComponent(path.slice('audit/'.length));
    const blob = context.corpus.blobOf(contentId);
    if (!context.auditingEnabled) return auditingOff('RetrieveContent', context, blob?.contentType ?? '');
    if (!blob || blob.visibleAt > context.now) return afError(400, 'AF20052', `Content ID ${contentId} in the URL is invalid.`);
    const refusal = permissionRefusal(context, roleFor(blob.contentType)) ?? subscriptionRefusal(context.subscriptions.get(blob.contentType));
    if (refusal) return refusal;
    if (blob.contentExpiration <= context.now) {
      return afError(400, 'AF20051', `Content requested with the key ${contentId} has already expired. Content older than 7 days cannot be retrieved.`);
    }
    if (!servable(blob, context.subscriptions.get(blob.contentType), context.now)) return afError(400, 'AF20052', `Content ID ${contentId} in the URL is invalid.`);
    // The exact bytes of the blob, never an array serialized on the way out (see corpus.ts).
    const texts = context.corpus.recordTexts(blob);
    return { status: 200, body: blobBody(texts.map((record) => record.text)), records: texts.length };
  }

  if (route === 'other') return afError(404, 'AF20001', `No HTTP resource was found that matches the request URI '${context.apiRoot}/api/v1.0/${context.tenantId}/activity/feed/${path}'.`);

  const contentTypeParam = query.get('contentType');
  if (contentTypeParam === null || contentTypeParam === '') return afError(400, 'AF20001', 'Missing parameter: contentType.');
  if (!isContentType(contentTypeParam)) return afError(400, 'AF20020', 'The specified content type is not valid.');
  const contentType: ContentType = contentTypeParam;
  const operation = { 'subscriptions/start': 'StartSubscription', 'subscriptions/stop': 'StopSubscription', 'subscriptions/content': 'ListContent', 'subscriptions/notifications': 'ListNotifications' }[route];
  if (method !== (route === 'subscriptions/start' || route === 'subscriptions/stop' ? 'POST' : 'GET')) return notAllowed;
  if (!context.auditingEnabled) return auditingOff(operation, context, contentType);
  const denied = permissionRefusal(context, roleFor(contentType));
  if (denied) return denied;
  const subscription = context.subscriptions.get(contentType);

  if (route === 'subscriptions/start') return start(contentType, body, context);
  if (route === 'subscriptions/stop') {
    if (!subscription) return afError(400, 'AF20022', 'No subscription found for the specified content type.');
    if (subscription.status === 'enabled') subscription.gaps.push({ from: context.now, to: undefined });
    subscription.status = 'disabled';
    return { status: 200, body: '' };
  }
  const refusal = subscriptionRefusal(subscription);
  if (refusal) return refusal;
  const window = timeWindow(query, context);
  if ('refusal' in window) return window.refusal;
  if (route === 'subscriptions/notifications') {
    return paged(context.webhooks.attempts(contentType, window.start, window.end), query, window, path, context);
  }
  const entries = context.corpus.blobsCreatedIn(contentType, window.start, window.end)
    .filter((blob) => servable(blob, subscription, context.now))
    .map((blob) => contentEntry(context.apiRoot, context.tenantId, blob));
  return paged(entries, query, window, path, context);
}
