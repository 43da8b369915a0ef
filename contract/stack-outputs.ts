/**
 * The stack-outputs contract: what the Pulumi program in infra/ exports, what `pulumi stack output --json
 * --show-secrets` prints, what the connector reads (`--outputs`, `--stack`) and what the stand-in writes. One
 * schema for all three; a field's error names the field and never shows a secret.
 */
import { z } from 'zod';
import { collectedTypes, type CollectedType } from './content-types.ts';
import { cloudNames, isCloudName } from './clouds.ts';

export const guidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A GUID; `what` completes "must be a GUID" for the field it checks. */
const guid = (what: string) => z.string().trim().regex(guidPattern, { error: (issue) => `must be a GUID${what} (got "${String(issue.input)}")` });

/** Fix sent with a custom issue (see `outputsError` in connector/config/outputs-error.ts): the same field can fail for reasons with different fixes. */
function fail(ctx: z.RefinementCtx, message: string, fix: string): never {
  ctx.addIssue({ code: 'custom', message, params: { fix } });
  return z.NEVER;
}

/** An https root URL without trailing slash: TLS verification is never switched off, not even for a private cloud. */
const httpsRoot = z.string().trim().transform((value, ctx) => {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return fail(ctx, `"${value}" is not a URL`, 'give an https:// URL such as https://manage.office.com');
  }
  if (url.protocol !== 'https:') {
    return fail(ctx, `must be https (got ${url.protocol}//)`, 'TLS verification is never switched off: use https://, and NODE_EXTRA_CA_CERTS or caFile for a private CA');
  }
  if (url.search || url.hash || url.username || url.password) return fail(ctx, `"${value}" must be a bare root URL (no query, fragment or credentials)`, 'e.g. https://manage.office.com');
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
});

const cloud = z.string().transform((value, ctx) => {
  const name = value.trim().toLowerCase();
  return isCloudName(name) ? name : fail(ctx, `unknown cloud "${name}"`, `use one of ${cloudNames.join(', ')}`);
});

const contentTypeList = z.array(z.enum(collectedTypes, { error: (issue) => `unknown content type "${String(issue.input)}"` }))
  .transform((names): CollectedType[] => [...new Set(names)]);

/**
 * How the connector proves itself to Entra ID: a client secret, a certificate, a federated token (workload identity
 * federation: an OIDC token from an issuer the app trusts, read from a file) or a managed identity (no app at all).
 */
export const credentialKinds = ['secret', 'certificate', 'federated', 'managedIdentity'] as const;
export type CredentialKind = (typeof credentialKinds)[number];

const isoTime = z.string().trim().refine((value) => !Number.isNaN(new Date(value).getTime()), { error: (issue) => `"${String(issue.input)}" is not an ISO time` });

export const stackOutputsSchema = z.object({
  /** The app registration's display name (config displayName). */
  connectorName: z.string().trim().min(1),
  tenantId: guid(', the directory (tenant) id, not the domain name'),
  /** The tenant's initial *.onmicrosoft.com domain. */
  tenantDomain: z.string().trim().min(1),
  /** The app's client id, or a user-assigned managed identity's; absent only for a system-assigned managed identity. */
  clientId: guid(', the application (client) id').optional(),
  /** Which credential the connector must use; absent in outputs of older stacks: a secret or a certificate, whichever is configured. */
  credential: z.enum(credentialKinds, { error: (issue) => `unknown credential "${String(issue.input)}"` }).optional(),
  /** A Pulumi secret; absent when credential is not "secret". Its errors never show it. */
  clientSecret: z.string({ error: 'must be the client secret, a string' }).trim().min(1, { error: 'must not be empty' }).optional(),
  /** When clientSecret expires (ISO time). */
  clientSecretExpiry: isoTime.optional(),
  /** Present when a certificate credential is registered. */
  certificateKeyId: z.string().trim().min(1).optional(),
  /** Sent as PublisherIdentifier: the tenant id unless configured. */
  publisherId: guid(''),
  cloud,
  authorityHost: httpsRoot,
  apiRoot: httpsRoot,
  /** Microsoft Graph's root for this cloud (service health); absent in outputs of older stacks: the cloud's, from clouds.ts. */
  graphRoot: httpsRoot.optional(),
  /**
   * What the granted permissions can read (no DLP.All without ActivityFeed.ReadDlp; ServiceHealth only when the stack
   * requested and consented the Graph permissions ServiceHealth.Read.All and ServiceMessage.Read.All).
   */
  contentTypes: contentTypeList,
  /**
   * Whether the stack requested and consented the Graph permission AuditLogsQuery.Read.All (history beyond the Management
   * Activity API's 7 days, from the audit search); absent in outputs of older stacks and of the environment: unknown.
   */
  auditSearch: z.boolean({ error: 'must be true or false' }).optional(),
  /** The Logs Ingestion endpoint of the Sentinel destination (a data collection endpoint's), when the stack made one. */
  sentinelEndpoint: httpsRoot.optional(),
  /** The data collection rule's immutable id (`dcr-` and 32 hex digits): the rule the Sentinel sink posts to. */
  sentinelRule: z.string().trim().regex(/^dcr-[0-9a-f]{32}$/i, { error: (issue) => `must be a data collection rule's immutable id, dcr-<32 hex digits> (got "${String(issue.input)}")` }).optional(),
  /** The stream the rule declares (Custom-O365Audit). */
  sentinelStream: z.string().trim().regex(/^Custom-[A-Za-z0-9_]+$/, { error: (issue) => `must be a custom stream name, Custom-<name> (got "${String(issue.input)}")` }).optional(),
  keyVaultUri: z.url({ protocol: /^https$/, error: 'must be an https URL' }).optional(),
  keyVaultSecretName: z.string().trim().min(1).optional(),
  subscriptionId: guid('').optional(),
  // The program never exports these two: the stand-in writes caFile, and an operator may add either to the file.
  /** Extra CA bundle (PEM) the connector trusts for the endpoints. */
  caFile: z.string().trim().min(1).optional(),
  /** PEM holding the private key and certificate, instead of clientSecret. */
  clientCertificatePath: z.string().trim().min(1).optional(),
  /** credential "federated": the file holding the workload's OIDC token (default AZURE_FEDERATED_TOKEN_FILE), read for every token request. */
  federatedTokenFile: z.string().trim().min(1).optional(),
});

/** The outputs, as the connector reads them (endpoints normalized, content types de-duplicated). */
export type StackOutputs = z.output<typeof stackOutputsSchema>;

/** Outputs that exist for the connector only; the Pulumi program does not export them. */
type ConnectorOnlyOutput = 'caFile' | 'clientCertificatePath' | 'federatedTokenFile';
/** What the Pulumi program exports. */
export type ProgramOutputs = Omit<StackOutputs, ConnectorOnlyOutput>;
