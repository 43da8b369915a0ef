import { ConnectorError } from '../errors.ts';

/** What each identity-platform error a user meets means, and which setup step fixes it. */
const table: Record<string, { meaning: string; fix: string }> = {
  '90002': { meaning: 'the tenant id was not found in this cloud', fix: 'check tenantId (`pulumi stack output tenantId`) and cloud/authorityHost (GCC High and DoD use login.microsoftonline.us)' },
  '900023': { meaning: 'the tenant id is not a valid tenant identifier', fix: 'set tenantId to the directory GUID from `pulumi stack output tenantId`' },
  '700016': { meaning: 'the client id is not an application in this tenant', fix: 'check clientId (`pulumi stack output clientId`); run `npm run pulumi -- up` if the app was deleted' },
  '7000215': { meaning: 'the client secret is wrong (often the secret ID was pasted instead of its value)', fix: 'use the value from `pulumi stack output --show-secrets clientSecret`' },
  '7000222': { meaning: 'the client secret has expired', fix: 'rotate it: `pulumi config set o365-connector:secretRotation <n+1> && npm run pulumi -- up`, then refresh the outputs file' },
  '1002012': { meaning: 'the token scope must end in /.default', fix: 'set apiRoot to the Management API root only (e.g. https://manage.office.com)' },
  '500011': { meaning: 'the Office 365 Management APIs resource is not known in this tenant or cloud', fix: 'check cloud/apiRoot match the tenant (commercial, gcc, gcchigh, dod, china)' },
  '700027': { meaning: 'the certificate assertion was rejected (unknown certificate or bad signature)', fix: 'register the certificate on the app (o365-connector:certificatePem) and use the matching private key' },
  '7000218': { meaning: 'no client secret or certificate was sent', fix: 'set O365_CLIENT_SECRET or O365_CLIENT_CERTIFICATE_PATH, or clientSecret in the outputs file' },
  '50034': { meaning: 'the account does not exist in this tenant', fix: 'check tenantId' },
};

export function aadstsCodeOf(text: string): string | undefined {
  return /AADSTS(\d+)/.exec(text)?.[1];
}

export function identityError(code: string | undefined, fallback: string): ConnectorError {
  if (code && table[code]) {
    const entry = table[code]!;
    return new ConnectorError(`AADSTS${code}`, `${entry.meaning}.`, { fix: entry.fix });
  }
  return new ConnectorError(code ? `AADSTS${code}` : 'AUTH_FAILED', `token request failed: ${fallback}`, { fix: 'check tenantId, clientId and the credential against `pulumi stack output`' });
}

/** Codes after which re-reading the configuration may find a rotated credential. */
export const credentialRejectedCodes = new Set(['7000215', '7000222', '700027']);
