import { ConnectorError } from '../../core/errors.ts';
import type { ContentType } from '../../../contract/content-types.ts';

/** The code C's collector reacts to by starting the subscription and listing again (the client does not do it itself). */
export const subscriptionMissingCode = 'AF20022';
/** "Tenant <id> does not exist" from the API: unified audit logging is off for the tenant. */
export const auditLogDisabledCode = 'AUDIT_LOG_DISABLED';
/** 401 without an AF code: the token was refused (expired, revoked, wrong audience). */
export const unauthorizedCode = 'UNAUTHORIZED';
/** A 2xx answer whose body is not the JSON expected (cut mid-body, proxy page, ...): retried. */
export const invalidBodyCode = 'INVALID_BODY';

interface AfEntry {
  readonly meaning: string;
  readonly fix?: string;
  readonly retryable?: boolean;
}

const windowRule: AfEntry = {
  meaning: 'the time window was rejected: both or neither bound, at most 24 hours apart, start at most 7 days back',
  fix: 'check the machine clock and --since (the connector corrects clock skew from the Date header)',
};

/** Management Activity API error codes a user meets: what each means, the fix, and whether to retry. */
export const afErrors: Readonly<Record<string, AfEntry>> = {
  AF10001: { meaning: 'the token lacks the permission for this call: admin consent is missing or the permission was removed', fix: 'grant admin consent: run `npm run pulumi -- up` (the stack grants it), or "Grant admin consent" on the app\'s API permissions page; DLP.All also needs ActivityFeed.ReadDlp' },
  AF20001: { meaning: 'the service did not recognise the request', fix: 'check apiRoot/cloud for your tenant' },
  AF20002: { meaning: 'the request body was not valid JSON', fix: 'report this as a connector bug' },
  AF20010: { meaning: 'the tenant id in the URL is not the tenant the token was issued for', fix: 'set tenantId to the app\'s home tenant: `pulumi stack output tenantId`' },
  AF20011: { meaning: 'the tenant id in the URL is not valid', fix: 'set tenantId from `pulumi stack output tenantId`' },
  AF20012: { meaning: 'the tenant id in the token is not valid', fix: 'set tenantId from `pulumi stack output tenantId`' },
  AF20013: { meaning: 'the tenant is not provisioned for the Management Activity API', fix: 'use a tenant with Microsoft 365 audit logging (E3/E5 or equivalent)' },
  AF20020: { meaning: 'the content type is not valid', fix: 'use Audit.AzureActiveDirectory, Audit.Exchange, Audit.SharePoint, Audit.General or DLP.All' },
  AF20021: { meaning: 'the webhook endpoint could not be validated', fix: 'make the webhook answer the validation POST with 200' },
  AF20022: { meaning: 'no subscription exists for this content type', fix: 'start it: `npx o365-connector subscriptions start`' },
  AF20023: { meaning: 'the subscription was disabled by an administrator', fix: 'start it again: `npx o365-connector subscriptions start`' },
  AF20024: { meaning: 'the subscription is already enabled' },
  AF20050: { meaning: 'the content id is not valid' },
  AF20051: { meaning: 'the content expired before it was fetched: content can be fetched for 7 days after it becomes available', fix: 'run the connector continuously so content is fetched within 7 days' },
  AF20052: { meaning: 'the content id is not valid' },
  AF20053: { meaning: 'only one of startTime and endTime was given', fix: 'report this as a connector bug' },
  AF20054: { meaning: 'the nextPageUri was not accepted', fix: 'report this as a connector bug' },
  AF20055: windowRule,
  AF20030: windowRule,
  AF20056: { meaning: 'the time window was rejected: start after end', fix: 'check the machine clock and --since' },
  AF429: { meaning: 'the tenant is throttled: too many requests for this publisher identifier', fix: 'none needed: the connector slows to the rate the service takes and repeats the call; make sure publisherId is set so the tenant has its own quota', retryable: true },
  AF50000: { meaning: 'the service had an internal error', fix: 'retry later; Microsoft 365 service health may show an incident', retryable: true },
  AF50005: { meaning: 'the service had an internal error', fix: 'retry later; Microsoft 365 service health may show an incident', retryable: true },
  AF50006: { meaning: 'the service had an internal error', fix: 'retry later; Microsoft 365 service health may show an incident', retryable: true },
};

export class ActivityApiError extends ConnectorError {
  /** HTTP status of the answer (0 when the error is about a request not sent). */
  readonly status: number;
  /** Wait asked for by the service's Retry-After header, in milliseconds. */
  readonly retryAfterMs: number | undefined;

  constructor(code: string, message: string, status: number, options: { fix?: string; retryable?: boolean; throttled?: boolean; retryAfterMs?: number | undefined; cause?: unknown } = {}) {
    super(code, message, options);
    this.status = status;
    this.retryAfterMs = options.retryAfterMs;
  }
}

function firstLine(text: string): string {
  return text.split(/\r?\n/)[0]!.trim().slice(0, 200);
}

/**
 * Reads an error answer. The decision follows the service's code, not the HTTP status: AF429 has been seen as
 * both 429 and 403, and a 400 can be "already enabled" (AF20024) or "audit logging off".
 */
export function activityError(status: number, bodyText: string, retryAfterMs?: number): ActivityApiError {
  let code: string | undefined;
  let message = '';
  try {
    const parsed = JSON.parse(bodyText) as { error?: { code?: unknown; message?: unknown }; Message?: unknown };
    if (typeof parsed.error?.code === 'string') code = parsed.error.code;
    if (typeof parsed.error?.message === 'string') message = parsed.error.message;
    else if (typeof parsed.Message === 'string') message = parsed.Message;
  } catch {
    message = bodyText;
  }
  const extra = { retryAfterMs };
  // The service answers this way when unified audit logging was never turned on, whatever the operation.
  if (/DataServiceException/.test(`${code ?? ''} ${message}`) && /Tenant \S+ does not exist/.test(message)) {
    return new ActivityApiError(auditLogDisabledCode, 'unified audit logging is not turned on for this tenant: the service says "Tenant <id> does not exist"', status, {
      fix: 'turn on audit log search: Microsoft Purview compliance portal > Audit > "Start recording user and admin activity", then allow up to 60 minutes',
      ...extra,
    });
  }
  if (code !== undefined && afErrors[code]) {
    const entry = afErrors[code]!;
    return new ActivityApiError(code, entry.meaning, status, { ...(entry.fix ? { fix: entry.fix } : {}), retryable: entry.retryable ?? false, throttled: code === 'AF429', ...extra });
  }
  if (status === 401) {
    return new ActivityApiError(unauthorizedCode, 'the API refused the access token: expired, revoked, or issued for another cloud', status, {
      fix: 'check that cloud/apiRoot match the tenant\'s cloud; if it persists, re-run `npx o365-connector test`', ...extra,
    });
  }
  const retryable = status >= 500 || status === 429 || status === 408;
  const detail = message ? `: ${code ? `${code} ` : ''}${firstLine(message)}` : code ? `: ${code}` : '';
  return new ActivityApiError(code && /^AF\d+$/.test(code) ? code : `HTTP${status}`, `the API answered HTTP ${status}${detail}`, status, { retryable, throttled: status === 429, ...extra });
}

/** The application permission of the Office 365 Management APIs that reading a content type takes. */
export function permissionFor(contentType: ContentType): string {
  return contentType === 'DLP.All' ? 'ActivityFeed.ReadDlp' : 'ActivityFeed.Read';
}

/**
 * AF10001 on a call for one content type, said for that content type: which permission the token lacks and how to grant
 * it (the service's own message need not name it). Any other error is returned as it is.
 */
export function forContentType(error: unknown, contentType: ContentType): unknown {
  if (!(error instanceof ActivityApiError) || error.code !== 'AF10001') return error;
  const permission = permissionFor(contentType);
  const others = contentType === 'DLP.All' ? '; or leave DLP.All out of --content-types' : '';
  return new ActivityApiError('AF10001', `${contentType}: the app's token lacks the ${permission} permission, which reading ${contentType} takes`, error.status, {
    fix: `grant ${permission} with admin consent: its stack's o365-connector:permissions must list it (pulumi config set o365-connector:permissions ActivityFeed.Read,ActivityFeed.ReadDlp,ServiceHealth.Read), then \`npm run pulumi -- up\` (or "Grant admin consent" on the app's API permissions page)${others}`,
    cause: error,
  });
}
