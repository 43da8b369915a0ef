// Verify-only customer stacks: the customer's own admin approved the app (admin-consent URL); the stack reads what
// is there and stops with one line when something is missing. It declares no resource.
import * as pulumi from '@pulumi/pulumi';
import * as azuread from '@pulumi/azuread';
import type { CloudEndpoints } from '../connector/config/clouds.ts';
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
export type GrantedRoles = (request: TokenRequest) => Promise<readonly string[] | undefined>;

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

/** The client-credentials grant at `{authority}/{tenant}/oauth2/v2.0/token` with scope `{apiRoot}/.default`. */
export const tokenRoles: GrantedRoles = async (request) => {
  const response = await fetch(`${request.authorityHost}/${request.tenantId}/oauth2/v2.0/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: request.clientId, client_secret: request.clientSecret, scope: `${request.apiRoot}/.default` }),
    signal: AbortSignal.timeout(30_000),
  });
  const body = await response.json().catch(() => ({})) as { access_token?: string; error_description?: string };
  if (response.ok && body.access_token) return rolesOf(body.access_token);
  const description = body.error_description ?? `HTTP ${response.status}`;
  if (/AADSTS700016/.test(description)) return undefined;
  throw new ConsentMissingError(`cannot check the app's permissions in tenant ${request.tenantId}: ${description.split(/\r?\n| Trace ID:/)[0]}`);
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
