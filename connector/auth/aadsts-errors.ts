import { ConnectorError } from '../core/errors.ts';

/** The identity platform refused to issue a token; `code` is `AADSTS<n>` when it said why. */
export class IdentityError extends ConnectorError {}

interface AadstsEntry {
  readonly meaning: string;
  readonly fix: string;
}

/** What each identity-platform error a user meets means, and which setup step fixes it. */
export const aadstsErrors: Readonly<Record<string, AadstsEntry>> = {
  '90002': { meaning: 'the tenant was not found in this cloud', fix: 'set tenantId from `pulumi stack output tenantId`, and check cloud/authorityHost (GCC High and DoD sign in at login.microsoftonline.us)' },
  '900023': { meaning: 'the tenant id is not a valid tenant identifier', fix: 'set tenantId to the directory GUID from `pulumi stack output tenantId`' },
  '900971': { meaning: 'no reply address is registered: a non-daemon sign-in was attempted', fix: 'report this as a connector bug' },
  '700016': { meaning: 'the application (client id) was not found in this tenant', fix: 'set clientId from `pulumi stack output clientId`; if the app was deleted, run `npm run pulumi -- up` to recreate it' },
  '7000215': { meaning: 'the client secret is invalid: often the secret ID was pasted instead of its value', fix: 'use the secret value: re-run `pulumi stack output --json --show-secrets` and take clientSecret' },
  '7000222': { meaning: 'the client secret has expired', fix: 'rotate it: `npm run pulumi -- config set secretRotation <n+1>` then `npm run pulumi -- up`, and refresh the outputs file with `pulumi stack output --json --show-secrets`' },
  '7000218': { meaning: 'neither a client secret nor a certificate assertion was sent', fix: 'set clientSecret (outputs file, O365_CLIENT_SECRET) or O365_CLIENT_CERTIFICATE_PATH' },
  '700027': { meaning: 'the certificate assertion was rejected: the certificate is not registered on the app, or key and certificate do not match', fix: 'register the certificate on the app with the stack (`npm run pulumi -- up`) and point O365_CLIENT_CERTIFICATE_PATH at its key + certificate PEM' },
  '70021': { meaning: 'no federated identity credential of the app matches the token\'s issuer, subject and audience', fix: 'add one for this workload: `pulumi config set o365-connector:federatedIdentities \'[{"issuer":"<iss>","subject":"<sub>"}]\'` with the token\'s iss and sub (audience api://AzureADTokenExchange), then `npm run pulumi -- up`' },
  '700211': { meaning: 'the app has no federated identity credential for the token\'s issuer', fix: 'add the issuer (the cluster\'s OIDC issuer URL, https://token.actions.githubusercontent.com, …) to o365-connector:federatedIdentities and run `npm run pulumi -- up`; the match is case-sensitive' },
  '700024': { meaning: 'the federated token is expired or not yet valid', fix: 'the token file must be rewritten before its token expires: check the agent that writes it (Azure Workload Identity\'s projected token, a CI step) and the clock of this host' },
  '1002012': { meaning: 'the requested scope is not valid: client credentials need `<resource>/.default`', fix: 'set apiRoot to the bare Management API root for your cloud, e.g. https://manage.office.com (or remove the override)' },
  '500011': { meaning: 'the Office 365 Management APIs resource was not found in the tenant: wrong cloud or apiRoot', fix: 'set cloud (commercial, gcc, gcchigh, dod, china) to the tenant\'s cloud and remove any wrong apiRoot override' },
  '70011': { meaning: 'the requested scope is not valid', fix: 'set apiRoot to the bare Management API root for your cloud (or remove the override)' },
  '7000112': { meaning: 'the application is disabled', fix: 'enable the app registration (or run `npm run pulumi -- up`)' },
  '50034': { meaning: 'the account does not exist in this tenant', fix: 'set tenantId from `pulumi stack output tenantId`' },
  '53003': { meaning: 'a Conditional Access policy blocked the token request', fix: 'exclude the connector\'s service principal from the policy, or allow its network location' },
};

export function aadstsCodeOf(text: string): string | undefined {
  return /AADSTS(\d+)/.exec(text)?.[1];
}

/** The error for an identity-platform answer: the known meaning and fix, or the service's own first sentence. */
export function identityError(code: string | undefined, description: string): IdentityError {
  const entry = code === undefined ? undefined : aadstsErrors[code];
  if (code !== undefined && entry) return new IdentityError(`AADSTS${code}`, entry.meaning, { fix: entry.fix });
  // The service's description ends with trace and correlation ids, which help nobody on this line.
  // msal wraps it as "Error(s): <codes> - Timestamp: … - Description: AADSTS…: <what>"; the service's own words are after that.
  const own = /Description: (.*)$/s.exec(description)?.[1] ?? description;
  const said = own.replace(/^AADSTS\d+:\s*/, '').split(/\r?\n| Trace ID:/)[0]!.trim().slice(0, 240);
  return new IdentityError(code === undefined ? 'AUTH_FAILED' : `AADSTS${code}`, `the identity platform refused the token request${said ? `: ${said}` : ''}`, {
    fix: 'compare tenantId, clientId and the credential with `pulumi stack output --json --show-secrets`',
  });
}

/** Codes after which re-reading the configuration may find a rotated credential. */
export const credentialRejectedCodes: ReadonlySet<string> = new Set(['7000215', '7000222', '700027']);
