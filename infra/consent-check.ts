// Verify-only customer stacks: the customer's own admin approved the app (admin-consent URL); the stack reads what
// is there and stops with one line when something is missing. It declares no resource.
import * as pulumi from '@pulumi/pulumi';
import * as azuread from '@pulumi/azuread';
import { EnvHttpProxyAgent, request as undiciRequest } from 'undici';
import type { CloudEndpoints } from '../contract/clouds.ts';
import { configNamespace, type PermissionName } from './config.ts';
import { adminConsentUrl } from './home-stack.ts';

export interface TokenRequest {
  readonly authorityHost: string;
  readonly apiRoot: string;
  readonly tenantId: string;
  readonly clientId: string;
  readonly clientSecret: string;
}

/**
 * The application permissions granted to the app in a tenant, as the identity platform sees them: the `roles` claim
 * of an app-only token for the Management API. `undefined` when the tenant does not know the app (AADSTS700016).
 */
export type GrantedRoles = (request: TokenRequest, options?: TokenRolesOptions) => Promise<readonly string[] | undefined>;

/** One line: which tenant, what is missing, and the URL its admin opens. */
export class ConsentMissingError extends pulumi.RunError {
  constructor(message: string) {
    super(`${configNamespace}:consent: ${message}`);
    this.name = 'ConsentMissingError';
  }
}

function rolesOf(accessToken: string): string[] {
  const payload = accessToken.split('.')[1];
  if (!payload) return [];
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { roles?: unknown };
  return Array.isArray(claims.roles) ? claims.roles.filter((role): role is string => typeof role === 'string') : [];
}

export interface TokenRolesOptions {
  /** Where HTTPS_PROXY / HTTP_PROXY / NO_PROXY are read (the process's environment by default). */
  readonly env?: NodeJS.ProcessEnv;
  /** How long the token request may take, connection included (30 s by default). */
  readonly timeoutMs?: number;
}

/** The code of a failed request: the socket's (ECONNREFUSED, ENOTFOUND, …), undici's (UND_ERR_…), or TIMEOUT. */
function failureCode(error: unknown): string {
  const seen = error as { name?: unknown; code?: unknown; cause?: unknown; errors?: unknown[] } | undefined;
  if (seen?.name === 'TimeoutError' || seen?.name === 'AbortError') return 'TIMEOUT';
  if (typeof seen?.code === 'string') return seen.code;
  const inner = seen?.cause ?? seen?.errors?.[0];
  return inner !== undefined && inner !== error ? failureCode(inner) : String(seen?.name ?? 'ERROR');
}

/**
 * The client-credentials grant at `{authority}/{tenant}/oauth2/v2.0/token` with scope `{apiRoot}/.default`, through
 * the proxy HTTPS_PROXY names (undici's EnvHttpProxyAgent: HTTP_PROXY for http, NO_PROXY honoured). A connection
 * that fails or an answer that does not come in time is one line naming the host and the error code.
 */
export const tokenRoles = async (request: TokenRequest, options: TokenRolesOptions = {}): Promise<readonly string[] | undefined> => {
  const env = options.env ?? process.env;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const url = new URL(`${request.authorityHost}/${request.tenantId}/oauth2/v2.0/token`);
  // '' rather than undefined: undici would otherwise read process.env itself.
  const dispatcher = new EnvHttpProxyAgent({
    httpProxy: env['http_proxy'] ?? env['HTTP_PROXY'] ?? '',
    httpsProxy: env['https_proxy'] ?? env['HTTPS_PROXY'] ?? '',
    noProxy: env['no_proxy'] ?? env['NO_PROXY'] ?? '',
  });
  try {
    let answer: { status: number; body: { access_token?: string; error_description?: string } };
    try {
      const response = await undiciRequest(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: request.clientId, client_secret: request.clientSecret, scope: `${request.apiRoot}/.default` }).toString(),
        signal: AbortSignal.timeout(timeoutMs),
        dispatcher,
      });
      const text = await response.body.text();
      let body: { access_token?: string; error_description?: string } = {};
      try { body = JSON.parse(text) as typeof body; } catch { /* not JSON: the status says what happened */ }
      answer = { status: response.statusCode, body };
    } catch (error) {
      const code = failureCode(error);
      throw new ConsentMissingError(`cannot reach ${url.host} to check the app's permissions in tenant ${request.tenantId}: ${code}${code === 'TIMEOUT' ? ` (no answer within ${timeoutMs / 1000} s)` : ''}; check the network path to ${url.host} (HTTPS_PROXY, NO_PROXY), then run pulumi up again`);
    }
    const { status, body } = answer;
    if (status >= 200 && status < 300 && body.access_token) return rolesOf(body.access_token);
    const description = body.error_description ?? `HTTP ${status}`;
    if (/AADSTS700016/.test(description)) return undefined;
    throw new ConsentMissingError(`cannot check the app's permissions in tenant ${request.tenantId}: ${description.split(/\r?\n| Trace ID:/)[0]}`);
  } finally {
    await dispatcher.close().catch(() => {});
  }
};

export interface ConsentCheckArgs {
  readonly clientId: string;
  /** The home stack's secret; without one (a certificate-only app) only the service principal's presence is checked. */
  readonly clientSecret: string | undefined;
  readonly connectorName: string;
  readonly permissions: readonly PermissionName[];
  /** Microsoft Graph application permissions the app requests: checked in a token for Graph. */
  readonly graphPermissions?: readonly string[];
  readonly endpoints: CloudEndpoints;
  readonly provider: azuread.Provider;
  readonly grantedRoles: GrantedRoles;
}

/** Fails with one line naming the missing permissions and the tenant's admin-consent URL; returns when consent is complete. */
export async function verifyConsent(args: ConsentCheckArgs): Promise<void> {
  const options = { provider: args.provider };
  const [client, domains] = await Promise.all([azuread.getClientConfig(options), azuread.getDomains({ onlyInitial: true }, options)]);
  const tenant = domains.domains.find((domain) => domain.initial)?.domainName ?? client.tenantId;
  const missing = (names: readonly string[]) => new ConsentMissingError(
    `${tenant} (${client.tenantId}) has not granted ${args.connectorName} (${args.clientId}) ${names.join(', ')}; `
    + `a Global Administrator of ${tenant} opens ${adminConsentUrl(args.endpoints.authorityHost, client.tenantId, args.clientId)} and approves, then run pulumi up again`,
  );

  const found = await azuread.getServicePrincipals({ clientIds: [args.clientId], ignoreMissing: true }, options);
  if (found.objectIds.length === 0) throw missing(args.permissions);
  if (args.clientSecret === undefined) {
    pulumi.log.warn(`the home stack's app has no client secret, so only its service principal in ${tenant} was checked, not which permissions were granted`);
    return;
  }
  const roles = await args.grantedRoles({
    authorityHost: args.endpoints.authorityHost, apiRoot: args.endpoints.apiRoot, tenantId: client.tenantId, clientId: args.clientId, clientSecret: args.clientSecret,
  });
  const absent = args.permissions.filter((permission) => !(roles ?? []).includes(permission));
  if (absent.length > 0) throw missing(absent);
  if ((args.graphPermissions ?? []).length === 0) return;
  // Graph's roles are in a token for Graph: the same client-credentials grant, the cloud's Graph as the audience.
  const graphRoles = await args.grantedRoles({
    authorityHost: args.endpoints.authorityHost, apiRoot: args.endpoints.graphRoot, tenantId: client.tenantId, clientId: args.clientId, clientSecret: args.clientSecret,
  });
  const absentGraph = args.graphPermissions!.filter((permission) => !(graphRoles ?? []).includes(permission));
  if (absentGraph.length > 0) throw missing(absentGraph.map((permission) => `Microsoft Graph ${permission}`));
}
