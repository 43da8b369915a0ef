/**
 * A managed identity has no app registration and no consent page: its permissions are app role assignments that only
 * code (the stack) makes. A refusal for a missing permission (AF10001, Graph's 403) then says how to assign the role to
 * the identity, not how to grant admin consent to an app.
 */
import type { ClientCredential } from '../config/credential.ts';
import { ActivityApiError } from '../sources/activity-api/af-errors.ts';
import { GraphApiError, graphForbiddenCode } from '../sources/graph/graph-errors.ts';

export const assignRolesFix = 'assign the roles to the identity: `pulumi config set o365-connector:credential managedIdentity`, `pulumi config set o365-connector:managedIdentityPrincipalId <its object id>`, then `npm run pulumi -- up` (the portal has no screen for app roles of a managed identity); a new role reaches tokens within minutes to hours, as the host caches them';

export function forCredential(error: unknown, credential: ClientCredential): unknown {
  // Explained once, whichever way the refusal came.
  if (credential.kind !== 'managedIdentity' || (error instanceof Error && error.message.includes('the managed identity lacks'))) return error;
  if (error instanceof ActivityApiError && error.code === 'AF10001') {
    // A content type's refusal already names the permission (forContentType); any other gets it said here.
    const message = error.message.includes('the app\'s token lacks')
      ? error.message.replace('the app\'s token lacks', 'the managed identity lacks')
      : `the managed identity lacks an app role of the Office 365 Management APIs this call needs (${error.message.replace(/\.$/, '')})`;
    return new ActivityApiError('AF10001', message, error.status, { fix: assignRolesFix, cause: error });
  }
  if (error instanceof GraphApiError && error.code === graphForbiddenCode) {
    return new GraphApiError(error.code, error.message.replace('the app lacks', 'the managed identity lacks'), error.status, {
      fix: `${assignRolesFix}; the Microsoft Graph roles come with o365-connector:${error.message.includes('audit search') ? 'auditSearch' : 'serviceHealth'} true`, graphCode: error.graphCode, cause: error,
    });
  }
  return error;
}
