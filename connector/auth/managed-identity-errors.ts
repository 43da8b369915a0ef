/**
 * Why the host's managed identity endpoint gave no token, in one line with the fix: no endpoint at all (not in Azure,
 * or no identity assigned to the host), or the endpoint's refusal (an identity not assigned to this host, a resource
 * it does not know).
 */
import { IdentityError, aadstsCodeOf, identityError } from './aadsts-errors.ts';
import type { WireRecord } from './undici-network-client.ts';

const noEndpointFix = 'run the connector on an Azure host with a managed identity assigned (App Service, Container Apps and Functions set IDENTITY_ENDPOINT and IDENTITY_HEADER; VMs and scale sets answer at 169.254.169.254), or choose another credential with --credential';
const headerFix = 'use the IDENTITY_ENDPOINT and IDENTITY_HEADER the host sets in the connector\'s environment, unchanged (they are the host\'s, per process start: never copy them from elsewhere)';
const notAssignedFix = 'assign the identity to this host; a user-assigned identity is named by its client id (clientId, O365_CLIENT_ID or AZURE_CLIENT_ID), the host\'s system-assigned one by no client id at all';

export function managedIdentityRefusal(error: unknown, record: WireRecord): IdentityError {
  if (record.transport) {
    return new IdentityError('MANAGED_IDENTITY_UNAVAILABLE', `no managed identity endpoint answered: ${record.transport.message.replace(/\.$/, '')}`, { fix: noEndpointFix, cause: error });
  }
  const body = record.refusal?.body as { error?: unknown; error_description?: unknown; message?: unknown } | undefined;
  const said = [body?.error_description, body?.message].find((value): value is string => typeof value === 'string') ?? '';
  const code = aadstsCodeOf(said);
  if (code) return identityError(code, said);
  if (record.refusal) {
    const what = said.split(/\r?\n/)[0]!.trim().slice(0, 240);
    return new IdentityError('MANAGED_IDENTITY_REFUSED', `the managed identity endpoint refused the token request (HTTP ${record.refusal.status}${what ? `: ${what}` : ''})`, { fix: record.refusal.status === 401 || record.refusal.status === 403 ? headerFix : notAssignedFix, cause: error });
  }
  const err = error as { errorCode?: string; errorMessage?: string; message?: string };
  return new IdentityError('MANAGED_IDENTITY_UNAVAILABLE', `no managed identity token: ${(err.errorMessage || err.message || String(error)).split('\n')[0]}`, { fix: noEndpointFix, cause: error });
}
