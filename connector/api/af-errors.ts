import { ConnectorError } from '../errors.ts';

/** Management Activity API error codes a user meets: what each means, the fix, and whether to retry. */
const table: Record<string, { meaning: string; fix?: string; retryable?: boolean }> = {
  AF10001: { meaning: 'the token lacks the permission for this call (admin consent missing or permission removed)', fix: 'grant admin consent: `npm run pulumi -- up` (it creates the consent), or "Grant admin consent" on the app\'s API permissions page' },
  AF20001: { meaning: 'the request was not understood by the service', fix: 'check apiRoot for your cloud' },
  AF20010: { meaning: 'the tenant id in the URL is not the tenant the token was issued for', fix: 'set tenantId to the app\'s home tenant (`pulumi stack output tenantId`)' },
  AF20020: { meaning: 'the content type is not valid', fix: 'use Audit.AzureActiveDirectory, Audit.Exchange, Audit.SharePoint, Audit.General or DLP.All' },
  AF20021: { meaning: 'the webhook endpoint could not be validated', fix: 'make the webhook answer the validation POST with 200' },
  AF20022: { meaning: 'no subscription exists for this content type', fix: 'start it: `npx o365-connector subscriptions start`', retryable: false },
  AF20023: { meaning: 'the subscription was disabled by an administrator', fix: 'start it again: `npx o365-connector subscriptions start`' },
  AF20024: { meaning: 'the subscription is already enabled' },
  AF20051: { meaning: 'the content expired (older than 7 days) before it was fetched' },
  AF20052: { meaning: 'the content id is invalid' },
  AF20054: { meaning: 'the nextPageUri is invalid', retryable: false },
  AF20055: { meaning: 'the time window was rejected (both or neither bound, at most 24 hours, start at most 7 days back)', fix: 'check the local clock (the connector corrects skew from the Date header) and --since' },
  AF20030: { meaning: 'the time window was rejected (both or neither bound, at most 24 hours, start at most 7 days back)', fix: 'check the local clock and --since' },
  AF429: { meaning: 'the tenant is throttled', fix: 'lower --requests-per-minute; make sure publisherId is set', retryable: true },
  AF50000: { meaning: 'the service had an internal error', retryable: true },
  AF50005: { meaning: 'the service had an internal error', retryable: true },
  AF50006: { meaning: 'the service had an internal error', retryable: true },
};

export class ActivityApiError extends ConnectorError {
  readonly status: number;
  constructor(code: string, message: string, status: number, options: { fix?: string; retryable?: boolean } = {}) {
    super(code, message, options);
    this.status = status;
  }
}

/** Reads an error answer; decides by the service's code, not the HTTP status (AF429 arrives as 429 and as 403). */
export function activityError(status: number, bodyText: string): ActivityApiError {
  let code: string | undefined;
  let message = '';
  try {
    const parsed = JSON.parse(bodyText) as { error?: { code?: string; message?: string }; Message?: string };
    code = parsed.error?.code;
    message = parsed.error?.message ?? parsed.Message ?? '';
  } catch {
    message = bodyText.slice(0, 200);
  }
  const text = `${code ?? ''} ${message}`;
  if (/DataServiceException/.test(text) && /does not exist/.test(text)) {
    return new ActivityApiError('AUDIT_LOG_DISABLED', 'unified audit logging is not turned on for this tenant (the service says "Tenant ... does not exist").', status, {
      fix: 'turn on audit log search: Microsoft Purview compliance portal > Audit > "Start recording user and admin activity", then wait up to 60 minutes',
    });
  }
  if (status === 401 && (!code || !code.startsWith('AF'))) {
    return new ActivityApiError('UNAUTHORIZED', 'the API refused the access token (expired, revoked or for another resource).', status, { fix: 'check apiRoot matches the cloud the token is issued for', retryable: false });
  }
  if (code && table[code]) {
    const entry = table[code]!;
    return new ActivityApiError(code, `${entry.meaning}.`, status, {
      ...(entry.fix ? { fix: entry.fix } : {}),
      retryable: entry.retryable ?? false,
    });
  }
  const retryable = status >= 500 || status === 429;
  return new ActivityApiError(code ?? `HTTP${status}`, `the API answered HTTP ${status}${message ? `: ${message.split('\n')[0]!.slice(0, 200)}` : ''}.`, status, { retryable });
}
