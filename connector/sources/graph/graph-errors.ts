/**
 * Microsoft Graph's errors (`{"error": {"code", "message", "innerError"}}`) as ConnectorErrors. What to do is decided
 * by the HTTP status, which Graph documents, not by the code, which varies between workloads: 401 a token to renew,
 * 403 a permission not granted, 429 and 503/504 throttling or a busy service (retried, after `Retry-After` when
 * given), other 5xx retried, other 4xx not.
 */
import { ConnectorError } from '../../core/errors.ts';

export class GraphApiError extends ConnectorError {
  readonly status: number;
  /** Server-requested wait (Retry-After), honoured by the retry policy. */
  readonly retryAfterMs: number | undefined;
  /** Graph's own code (`Forbidden`, `TooManyRequests`, `InvalidAuthenticationToken`, ...), when the body gave one. */
  readonly graphCode: string | undefined;

  constructor(code: string, message: string, status: number, options: { fix?: string; retryable?: boolean; throttled?: boolean; retryAfterMs?: number | undefined; graphCode?: string | undefined; cause?: unknown } = {}) {
    super(code, message, options);
    this.status = status;
    this.retryAfterMs = options.retryAfterMs;
    this.graphCode = options.graphCode;
  }
}

/** A Graph call refused: the app lacks one of the Graph application permissions (or its admin consent). */
export const graphForbiddenCode = 'GRAPH_FORBIDDEN';
export const graphUnauthorizedCode = 'GRAPH_UNAUTHORIZED';
export const graphThrottledCode = 'GRAPH_THROTTLED';

/** The Graph application permission each resource the connector reads needs (service announcements, the audit search). */
export const graphPermissionOf = {
  healthOverviews: 'ServiceHealth.Read.All',
  issues: 'ServiceHealth.Read.All',
  messages: 'ServiceMessage.Read.All',
  auditLog: 'AuditLogsQuery.Read.All',
} as const;
export type GraphResource = keyof typeof graphPermissionOf;
export type ServiceAnnouncementResource = Exclude<GraphResource, 'auditLog'>;

/** The stack setting that makes the app request a resource's permission. */
const stackSettingOf = (resource: GraphResource | undefined) => (resource === 'auditLog' ? 'auditSearch' : 'serviceHealth');

export const grantGraphPermissionsFix = (permission: string, setting = 'serviceHealth') =>
  `grant the app the Microsoft Graph application permission ${permission} with admin consent: pulumi config set o365-connector:${setting} true and pulumi up (or, in the portal: API permissions → Add → Microsoft Graph → Application → ${permission} → Grant admin consent), then wait a few minutes for the token to carry it`;

export function graphError(status: number, bodyText: string, resource: GraphResource | undefined, retryAfterMs: number | undefined): GraphApiError {
  let graphCode: string | undefined;
  let graphMessage: string | undefined;
  try {
    const error = (JSON.parse(bodyText) as { error?: { code?: unknown; message?: unknown } }).error;
    if (typeof error?.code === 'string') graphCode = error.code;
    if (typeof error?.message === 'string') graphMessage = error.message;
  } catch {
    // not JSON: a proxy's or load balancer's page
  }
  const said = graphMessage ? ` (${graphCode ?? 'no code'}: ${graphMessage.split('\n')[0]!.slice(0, 300)})` : graphCode ? ` (${graphCode})` : '';
  const where = resource === 'auditLog' ? 'the audit search (security/auditLog)' : resource ? `serviceAnnouncement/${resource}` : 'Microsoft Graph';
  const extra = { retryAfterMs, graphCode };
  if (status === 401) {
    return new GraphApiError(graphUnauthorizedCode, `Microsoft Graph refused the access token for ${where}${said}`, status, {
      ...extra, fix: 'check that the outputs\' graphRoot is this cloud\'s Microsoft Graph (the token audience is `${graphRoot}/.default`)',
    });
  }
  if (status === 403) {
    const permission = resource ? graphPermissionOf[resource] : 'ServiceHealth.Read.All and ServiceMessage.Read.All';
    return new GraphApiError(graphForbiddenCode, `Microsoft Graph refused ${where}: the app lacks ${permission}${said}`, status, { ...extra, fix: grantGraphPermissionsFix(permission, stackSettingOf(resource)) });
  }
  if (status === 429) {
    return new GraphApiError(graphThrottledCode, `Microsoft Graph throttled ${where}${retryAfterMs === undefined ? '' : ` (Retry-After ${Math.round(retryAfterMs / 1000)} s)`}${said}`, status, {
      ...extra, throttled: true, fix: 'none needed: the call waits as long as Graph asks and is repeated until it passes',
    });
  }
  if (status >= 500) {
    return new GraphApiError(`GRAPH_${status}`, `Microsoft Graph answered HTTP ${status} for ${where}${said}`, status, { ...extra, retryable: true, fix: 'none needed if it passes: the call is retried' });
  }
  return new GraphApiError(`GRAPH_${status}`, `Microsoft Graph answered HTTP ${status} for ${where}${said}`, status, { ...extra, fix: 'report it: the connector sent a request Graph does not accept' });
}
