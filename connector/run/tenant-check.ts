/**
 * What `test` asks of each tenant, as results (the CLI prints them): a token and the subscription list; whether the
 * app may read every audit content type `run` will collect; whether the Microsoft Graph permissions for service
 * health are granted.
 */
import { auditTypesOf, serviceHealth, type ContentType } from '../../contract/content-types.ts';
import type { RetryPolicyOptions } from '../http/retry.ts';
import { Slots } from '../http/slots.ts';
import { ActivityApiError, subscriptionMissingCode } from '../sources/activity-api/af-errors.ts';
import { GraphApiError, graphForbiddenCode, graphPermissionOf } from '../sources/graph/graph-errors.ts';
import type { AnnouncementKind } from '../sources/graph/service-health-api.ts';
import type { TenantRuntime } from './tenant-runtimes.ts';
import { forCredential } from './identity-roles.ts';

/** `test` and `status` answer in seconds: a couple of quick retries, not the collector's patient policy. */
export const quickRetryPolicy: RetryPolicyOptions = { maxAttempts: 3, baseDelayMs: 300, maxDelayMs: 2000, maxRetryAfterMs: 5000, maxThrottledMs: 10_000 };

/** A token, then the subscription list: the content types whose subscription is enabled. Throws what refused. */
export async function checkConnection(runtime: TenantRuntime): Promise<string[]> {
  await runtime.clients.tokens.getToken();
  const subscriptions = await runtime.clients.api.listSubscriptions().catch((error: unknown) => { throw forCredential(error, runtime.entry.config.credential); });
  return subscriptions.filter((s) => s.status === 'enabled').map((s) => s.contentType);
}

/** Tenants asked at once (each has its own quota; the machine's connections are the bound). */
const tenantsAtOnce = 8;

export type ConnectionResult = { readonly runtime: TenantRuntime; readonly enabled: string[] } | { readonly runtime: TenantRuntime; readonly error: unknown };

/** checkConnection of every runtime, a few at once, in the order given. */
export function checkConnections(runtimes: readonly TenantRuntime[]): Promise<ConnectionResult[]> {
  const slots = new Slots(tenantsAtOnce);
  return Promise.all(runtimes.map(async (runtime): Promise<ConnectionResult> => {
    await slots.acquire();
    const result = await checkConnection(runtime).then((enabled) => ({ runtime, enabled }), (error: unknown) => ({ runtime, error }));
    slots.release();
    return result;
  }));
}

/** A window just behind now: listing it asks for exactly what `run` asks for, and costs one request. */
const probeWindowMs = 5 * 60_000;

/** A subscription never started (AF20022) or disabled (AF20023): not a permission problem, and `run` starts it. */
const notStartedCodes = new Set([subscriptionMissingCode, 'AF20023']);

/**
 * Whether the app may read every audit content type `run` will collect: one listing of a few minutes of each (the
 * service checks the permission before anything else, so DLP.All without ActivityFeed.ReadDlp answers AF10001 here,
 * not first in `run`). A subscription not started yet is fine: `run` starts it. Any other failure is thrown.
 */
export async function checkContentTypes(runtime: TenantRuntime): Promise<{ readable: ContentType[]; refused: ActivityApiError[] }> {
  const { api } = runtime.clients;
  const readable: ContentType[] = [];
  const refused: ActivityApiError[] = [];
  for (const contentType of auditTypesOf(runtime.entry.config.contentTypes)) {
    const end = new Date(Date.now() + api.clockSkewMs - 60_000);
    try {
      for await (const _page of api.listContent(contentType, { start: new Date(end.getTime() - probeWindowMs), end })) break;
      readable.push(contentType);
    } catch (error) {
      if (!(error instanceof ActivityApiError)) throw error;
      if (notStartedCodes.has(error.code)) readable.push(contentType);
      else if (error.code === 'AF10001') refused.push(forCredential(error, runtime.entry.config.credential) as ActivityApiError);
      else throw error;
    }
  }
  return { readable, refused };
}

export interface GraphCheck {
  /** ServiceHealth is to be collected: a missing permission fails `test`. */
  readonly collected: boolean;
  readonly host: string;
  readonly granted: string[];
  /** A permission refused (`forbidden`), or Graph that could not be asked (the token, the network: said once for both). */
  readonly problems: Array<{ readonly permission: string; readonly forbidden: boolean; readonly error: unknown }>;
}

/**
 * Whether the app may read service health from Microsoft Graph: one item of issues (ServiceHealth.Read.All) and of
 * messages (ServiceMessage.Read.All), with a token for the cloud's Graph.
 */
export async function checkGraphPermissions(runtime: TenantRuntime): Promise<GraphCheck> {
  const { config } = runtime.entry;
  const collected = config.contentTypes.includes(serviceHealth);
  const check: GraphCheck = { collected, host: new URL(config.graphRoot).host, granted: [], problems: [] };
  for (const resource of ['issues', 'messages'] as const satisfies readonly AnnouncementKind[]) {
    const permission = graphPermissionOf[resource];
    try {
      // Not collected: a hint only, so a Graph the network blocks costs `test` seconds, not minutes.
      await runtime.clients.graph.probe(resource, { abortSignal: AbortSignal.timeout(collected ? 60_000 : 10_000) });
      check.granted.push(permission);
    } catch (error) {
      const forbidden = error instanceof GraphApiError && error.code === graphForbiddenCode;
      check.problems.push({ permission, forbidden, error: forCredential(error, config.credential) });
      if (!forbidden) break;
    }
  }
  return check;
}

export type AuditSearchCheck =
  | { readonly granted: true }
  | { readonly granted: false; readonly forbidden: boolean; readonly error: unknown }
  | { readonly unavailable: string };

/**
 * Whether history beyond the API's 7 days can be read from the audit search: one look at the app's queries
 * (AuditLogsQuery.Read.All), or why it cannot be read at all (the cloud, the outputs, --history-queries 0).
 * Undefined when no audit content type is collected.
 */
export async function checkAuditSearch(runtime: TenantRuntime): Promise<AuditSearchCheck | undefined> {
  const [audit] = auditTypesOf(runtime.entry.config.contentTypes);
  const history = audit === undefined ? undefined : runtime.historyOf(audit);
  if (history === undefined) return undefined;
  if ('unavailable' in history) return { unavailable: history.unavailable };
  try {
    // A hint (the run goes on without it): a Graph the network blocks costs `test` seconds, not minutes.
    await runtime.clients.history.api.probe({ abortSignal: AbortSignal.timeout(10_000) });
    return { granted: true };
  } catch (error) {
    return { granted: false, forbidden: error instanceof GraphApiError && error.code === graphForbiddenCode, error: forCredential(error, runtime.entry.config.credential) };
  }
}
