/**
 * The Office 365 Management Activity API under /api/v1.0/{tenant}/activity/feed/, enforcing the documented
 * rules (../shared/API-NOTES.md) and answering with the documented error bodies. Nothing friendlier.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { isContentType, type ContentType } from '../../connector/api/content-types.ts';
import type { Corpus } from './corpus.ts';
import { readAccessToken, type HttpAnswer } from './identity.ts';

const hour = 3_600_000;
const day = 24 * hour;

export interface SubscriptionRecord {
  status: 'enabled' | 'disabled';
  webhook: { status: string; address: string; authId: string | null; expiration: string | null } | null;
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
  readonly tokenGeneration: number;
  readonly onWindowRejected: () => void;
  readonly validateWebhook: (address: string, authId: string | null) => Promise<boolean>;
}

export function afError(status: number, code: string, message: string): HttpAnswer {
  return { status, body: { error: { code, message } } };
}

const windowMessage = 'Start time and end time must both be specified (or both omitted) and must be less than or equal to 24 hours apart, with the start time no more than 7 days in the past.';
const pageKey = randomUUID();

/** The three documented formats, all UTC: YYYY-MM-DD, YYYY-MM-DDTHH:MM, YYYY-MM-DDTHH:MM:SS. */
export function parseApiTime(value: string): Date | undefined {
  const match = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2}))?)?$/.exec(value);
  if (!match) return undefined;
  const [, y, mo, d, h = '00', mi = '00', s = '00'] = match;
  const date = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h), Number(mi), Number(s)));
  return Number.isNaN(date.getTime()) || date.toISOString().slice(0, 10) !== `${y}-${mo}-${d}` ? undefined : date;
}

function signPage(offset: number, start: number, end: number): string {
  const body = `${offset}R${start.toString(36)}R${end.toString(36)}`;
  return `${body}R${createHmac('sha256', pageKey).update(body).digest('hex').slice(0, 16)}`;
}

function readPage(token: string): { offset: number; start: number; end: number } | undefined {
  const [offset, start, end, mac] = token.split('R');
  if (offset === undefined || start === undefined || end === undefined || mac === undefined) return undefined;
  if (signPage(Number(offset), parseInt(start, 36), parseInt(end, 36)) !== token) return undefined;
  return { offset: Number(offset), start: parseInt(start, 36), end: parseInt(end, 36) };
}

function auditingOff(operation: string, context: FeedContext, contentType: string): HttpAnswer {
  const corr = randomUUID();
  return afError(400,
    `${operation} [CorrId=${corr}][TenantId=${context.tenantId},ContentType=${contentType},ApplicationId=${context.clientId},PublisherId=${context.tenantId}][AppId`,
    `${context.clientId}] failed. Exception: Microsoft.Office.Compliance.Audit.DataServiceException: Tenant ${context.tenantId} does not exist.\r\n   at Microsoft.Office.Compliance.Audit.API.AzureManager.<GetSubscriptionTableClientForTenantAsync>d__52.MoveNext()\r\n--- End of stack trace from previous location where exception was thrown ---`);
}

function contentEntry(context: FeedContext, blob: ReturnType<Corpus['blob']>) {
  return {
    contentType: blob.contentType,
    contentId: blob.contentId,
    contentUri: `${context.apiRoot}/api/v1.0/${context.tenantId}/activity/feed/audit/${blob.contentId}`,
    contentCreated: blob.contentCreated.toISOString(),
    contentExpiration: blob.contentExpiration.toISOString(),
  };
}

/** Checks the bearer token; returns an answer when the request must be refused. */
export function authorize(authorization: string | undefined, urlTenant: string, context: FeedContext, neededRole: string): HttpAnswer | undefined {
  const token = authorization?.startsWith('Bearer ') ? authorization.slice(7) : undefined;
  const claims = token ? readAccessToken(token) : undefined;
  const denied: HttpAnswer = { status: 401, body: { Message: 'Authorization has been denied for this request.' }, headers: { 'WWW-Authenticate': 'Bearer' } };
  if (!claims) return denied;
  if (claims.exp * 1000 <= context.now.getTime()) return denied;
  if (claims.gen < context.tokenGeneration) return denied;
  if (claims.aud !== context.apiRoot) return denied;
  if (claims.tid !== urlTenant) return afError(400, 'AF20010', `The tenant ID passed in the URL (${urlTenant}) does not match the tenant ID passed in the access token (${claims.tid}).`);
  if (!claims.roles.includes(neededRole)) {
    return afError(401, 'AF10001', `The permission set (${claims.roles.join(',')}) sent in the request does not include the expected permission ${neededRole}.`);
  }
  return undefined;
}

export async function handleFeed(
  method: string, path: string, query: URLSearchParams, body: string, context: FeedContext,
): Promise<HttpAnswer> {
  const contentTypeParam = query.get('contentType') ?? '';
  const subscriptionsRoute = /^subscriptions\/(start|stop|list|content|notifications)$/.exec(path);

  if (subscriptionsRoute) {
    const operation = subscriptionsRoute[1]!;
    if (operation === 'list') {
      if (method !== 'GET') return afError(405, 'AF20001', 'The requested method is not supported.');
      if (!context.auditingEnabled) return auditingOff('ListSubscriptions', context, '');
      return { status: 200, body: [...context.subscriptions].map(([contentType, s]) => ({ contentType, status: s.status, webhook: s.webhook })) };
    }
    if (!isContentType(contentTypeParam)) return afError(400, 'AF20020', `The specified content type is not valid: ${contentTypeParam}`);
    const contentType: ContentType = contentTypeParam;
    if (!context.auditingEnabled) return auditingOff(operation === 'start' ? 'StartSubscription' : 'ListContent', context, contentType);
    const subscription = context.subscriptions.get(contentType);

    if (operation === 'start') {
      if (method !== 'POST') return afError(405, 'AF20001', 'The requested method is not supported.');
      let webhook: SubscriptionRecord['webhook'] = null;
      if (body.trim() !== '') {
        let parsed: { webhook?: { address?: string; authId?: string; expiration?: string } };
        try { parsed = JSON.parse(body); } catch { return afError(400, 'AF20002', 'The request body is not valid JSON.'); }
        if (parsed.webhook?.address) {
          if (!(await context.validateWebhook(parsed.webhook.address, parsed.webhook.authId ?? null))) {
            return afError(400, 'AF20021', `The webhook endpoint {${parsed.webhook.address}} could not be validated.`);
          }
          webhook = { status: 'enabled', address: parsed.webhook.address, authId: parsed.webhook.authId ?? null, expiration: parsed.webhook.expiration ?? null };
        }
      }
      if (subscription?.status === 'enabled') return afError(400, 'AF20024', 'The subscription is already enabled. No property change.');
      const record: SubscriptionRecord = { status: 'enabled', webhook };
      context.subscriptions.set(contentType, record);
      return { status: 200, body: { contentType, status: 'enabled', webhook } };
    }
    if (operation === 'stop') {
      if (method !== 'POST') return afError(405, 'AF20001', 'The requested method is not supported.');
      if (!subscription) return afError(400, 'AF20022', 'No subscription found for the specified content type.');
      subscription.status = 'disabled';
      return { status: 200, body: '' };
    }
    if (method !== 'GET') return afError(405, 'AF20001', 'The requested method is not supported.');
    if (!subscription || subscription.status !== 'enabled') {
      return subscription ? afError(400, 'AF20023', 'The subscription was disabled by an administrator.') : afError(400, 'AF20022', 'No subscription found for the specified content type.');
    }
    if (operation === 'notifications') return { status: 200, body: [] };

    // subscriptions/content
    const startParam = query.get('startTime');
    const endParam = query.get('endTime');
    const nextPage = query.get('nextPage');
    let start: Date;
    let end: Date;
    if (startParam === null && endParam === null) {
      end = context.now;
      start = new Date(end.getTime() - day);
    } else {
      const parsedStart = startParam === null ? undefined : parseApiTime(startParam);
      const parsedEnd = endParam === null ? undefined : parseApiTime(endParam);
      if (!parsedStart || !parsedEnd || parsedEnd <= parsedStart || parsedEnd.getTime() - parsedStart.getTime() > day
        || parsedStart.getTime() < context.now.getTime() - 7 * day) {
        context.onWindowRejected();
        return afError(400, 'AF20055', windowMessage);
      }
      start = parsedStart;
      end = parsedEnd;
    }
    let offset = 0;
    if (nextPage !== null) {
      const page = readPage(nextPage);
      if (!page || page.start !== start.getTime() || page.end !== end.getTime()) return afError(400, 'AF20054', 'Invalid nextPageUri.');
      offset = page.offset;
    }
    const { first, last } = context.corpus.indexRange(start, end);
    const visible = [];
    for (let index = first; index <= last; index += 1) {
      const blob = context.corpus.blob(contentType, index);
      if (blob.contentCreated >= start && blob.contentCreated < end && blob.visibleAt <= context.now && blob.contentExpiration > context.now) visible.push(blob);
    }
    const page = visible.slice(offset, offset + context.pageSize).map((blob) => contentEntry(context, blob));
    const headers: Record<string, string> = {};
    if (offset + context.pageSize < visible.length) {
      const next = new URLSearchParams(query);
      next.set('nextPage', signPage(offset + context.pageSize, start.getTime(), end.getTime()));
      headers['NextPageUri'] = `${context.apiRoot}/api/v1.0/${context.tenantId}/activity/feed/subscriptions/content?${next.toString()}`;
    }
    return { status: 200, body: page, headers };
  }

  const auditRoute = /^audit\/(.+)$/.exec(path);
  if (auditRoute) {
    if (method !== 'GET') return afError(405, 'AF20001', 'The requested method is not supported.');
    const contentId = decodeURIComponent(auditRoute[1]!);
    const blob = context.corpus.blobOf(contentId);
    if (!blob || blob.visibleAt > context.now) return afError(400, 'AF20052', 'Content ID in the URL is invalid.');
    if (blob.contentExpiration <= context.now) {
      return afError(400, 'AF20051', `Content requested with the key ${contentId} has already expired. Content older than 7 days cannot be retrieved.`);
    }
    return { status: 200, body: context.corpus.records(blob) };
  }

  if (path === 'resources/dlpSensitiveTypes' && method === 'GET') {
    return { status: 200, body: [{ id: '50842eb7-edc8-4019-85dd-5a5c1f2bb085', name: 'CreditCardNumber' }, { id: '0e9b3178-9678-47dd-a509-37222ca96b42', name: 'EUDebitCardNumber' }] };
  }
  return afError(404, 'AF20001', `The requested resource ${path} was not found.`);
}
