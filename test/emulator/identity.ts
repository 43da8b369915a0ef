/**
 * The Microsoft identity platform as far as a daemon sees it: OpenID metadata, instance discovery, and the
 * client-credentials token endpoint (client secret, certificate assertion, or a federated token from a trusted issuer), with the real AADSTS error shapes
 * and HTTP statuses. Access tokens are JWTs HMAC-signed by this stand-in and checked by the activity feed for
 * signature, tenant, audience, expiry, roles and revocation.
 */
import { createHmac, createHash, randomUUID, timingSafeEqual, verify, type KeyObject, type X509Certificate, constants } from 'node:crypto';

export interface IdentityState {
  readonly tenantId: string;
  readonly tenantDomain: string;
  readonly clientId: string;
  /** Secrets the app accepts, with an optional expiry. */
  readonly secrets: Array<{ value: string; expires: Date | undefined }>;
  readonly certificates: X509Certificate[];
  /** Federated identity credentials of the app: a token of `issuer` for `subject`, with one of `audiences`, signs the app in. */
  readonly federatedCredentials: Array<{ issuer: string; subject: string; audiences: string[] }>;
  grantedRoles: string[];
  /** Microsoft Graph application permissions: the roles of a token for the Graph resource. */
  graphRoles: string[];
  tokenLifetimeSeconds: number;
  /** Tokens of an earlier generation are rejected (revocation). */
  generation: number;
  /** Key of this stand-in's token signatures: a token from another stand-in is not valid here. */
  readonly signingKey: string;
}

export interface TokenClaims {
  readonly iss: string;
  readonly tid: string;
  readonly appid: string;
  readonly aud: string;
  readonly roles: string[];
  readonly iat: number;
  readonly nbf: number;
  readonly exp: number;
  readonly jti: string;
  readonly gen: number;
}

export interface HttpAnswer {
  readonly status: number;
  /** Sent as is when a string or Buffer, as JSON otherwise. */
  readonly body: unknown;
  readonly headers?: Record<string, string>;
  /** For a blob: how many records its body holds. */
  readonly records?: number;
}

const guidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const dnsPattern = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/i;
/** Resources every tenant has besides the API: Entra issues tokens for them, which the API must refuse. */
const otherResources = ['https://graph.microsoft.com', 'https://management.azure.com', 'https://manage.office.com', 'https://monitor.azure.com'];
export const assertionType = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

export function issueAccessToken(claims: TokenClaims, signingKey: string): string {
  const header = Buffer.from(JSON.stringify({ typ: 'JWT', alg: 'HS256' })).toString('base64url');
  const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
  const signature = createHmac('sha256', signingKey).update(`${header}.${payload}`).digest('base64url');
  return `${header}.${payload}.${signature}`;
}

/** The claims of a token this stand-in signed, or undefined for anything else. */
export function readAccessToken(token: string, signingKey: string): TokenClaims | undefined {
  const [header, payload, signature, extra] = token.split('.');
  if (!header || !payload || !signature || extra !== undefined) return undefined;
  const expected = Buffer.from(createHmac('sha256', signingKey).update(`${header}.${payload}`).digest('base64url'));
  const given = Buffer.from(signature);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  try {
    return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as TokenClaims;
  } catch {
    return undefined;
  }
}

/** Entra's timestamp form, "2026-11-20 12:00:00Z". */
function aadTimestamp(now: Date): string {
  return now.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

/** The error body of the identity platform, as seen on the wire (lines of the description end in \r\n). */
export function aadError(now: Date, status: number, error: string, code: number, description: string): HttpAnswer {
  const traceId = randomUUID();
  const correlationId = randomUUID();
  const timestamp = aadTimestamp(now);
  return {
    status,
    body: {
      error,
      error_description: `AADSTS${code}: ${description}\r\nTrace ID: ${traceId}\r\nCorrelation ID: ${correlationId}\r\nTimestamp: ${timestamp}`,
      error_codes: [code],
      timestamp,
      trace_id: traceId,
      correlation_id: correlationId,
      error_uri: `https://login.microsoftonline.com/error?code=${code}`,
    },
  };
}

/** The tenants the stand-in serves, found by id or domain name (any case); undefined for any other name. */
export type Directory = (tenant: string) => IdentityState | undefined;

type TenantLookup = { kind: 'tenant'; state: IdentityState } | { kind: 'multi' } | { kind: 'unknown' } | { kind: 'malformed' };

function lookUpTenant(tenant: string, directory: Directory): TenantLookup {
  const lower = tenant.toLowerCase();
  const state = directory(tenant);
  if (state) return { kind: 'tenant', state };
  if (lower === 'common' || lower === 'organizations') return { kind: 'multi' };
  if (guidPattern.test(tenant) || dnsPattern.test(tenant)) return { kind: 'unknown' };
  return { kind: 'malformed' };
}

function tenantRefusal(tenant: string, lookup: TenantLookup, now: Date, error: string): HttpAnswer | undefined {
  if (lookup.kind === 'unknown') {
    return aadError(now, 400, error, 90002, `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.`);
  }
  if (lookup.kind === 'malformed') {
    return aadError(now, 400, 'invalid_request', 900023, `Specified tenant identifier '${tenant}' is neither a valid DNS name, nor a valid external domain.`);
  }
  return undefined;
}

/** `GET /{tenant}/v2.0/.well-known/openid-configuration`; an unknown tenant is refused here already. */
export function openIdConfiguration(authorityHost: string, tenant: string, directory: Directory, now: Date): HttpAnswer {
  const lookup = lookUpTenant(tenant, directory);
  const refused = tenantRefusal(tenant, lookup, now, 'invalid_tenant');
  if (refused) return refused;
  // Like Entra: the metadata names the tenant by id, whatever name it was asked by; multi-tenant names get a placeholder.
  const issuerTenant = lookup.kind === 'tenant' ? lookup.state.tenantId : '{tenantid}';
  const base = `${authorityHost}/${lookup.kind === 'tenant' ? lookup.state.tenantId : tenant}`;
  return {
    status: 200,
    body: {
      token_endpoint: `${base}/oauth2/v2.0/token`,
      token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
      jwks_uri: `${base}/discovery/v2.0/keys`,
      response_modes_supported: ['query', 'fragment', 'form_post'],
      subject_types_supported: ['pairwise'],
      id_token_signing_alg_values_supported: ['RS256'],
      response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      issuer: `${authorityHost}/${issuerTenant}/v2.0`,
      request_uri_parameter_supported: false,
      userinfo_endpoint: 'https://graph.microsoft.com/oidc/userinfo',
      authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
      device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
      http_logout_supported: true,
      frontchannel_logout_supported: true,
      end_session_endpoint: `${base}/oauth2/v2.0/logout`,
      claims_supported: ['sub', 'iss', 'cloud_instance_name', 'cloud_instance_host_name', 'cloud_graph_host_name', 'msgraph_host', 'aud', 'exp', 'iat', 'auth_time', 'acr', 'nonce', 'preferred_username', 'name', 'tid', 'ver', 'at_hash', 'c_hash', 'email'],
      kerberos_endpoint: `${base}/kerberos`,
      tenant_region_scope: 'EU',
      cloud_instance_name: 'microsoftonline.com',
      cloud_graph_host_name: 'graph.windows.net',
      msgraph_host: 'graph.microsoft.com',
      rbac_url: 'https://pas.windows.net',
    },
  };
}

/** `GET /common/discovery/instance?api-version=1.1&authorization_endpoint=…`, answering for this host only. */
export function instanceDiscovery(authorityHost: string): HttpAnswer {
  const host = new URL(authorityHost).host;
  return {
    status: 200,
    body: {
      tenant_discovery_endpoint: `${authorityHost}/common/v2.0/.well-known/openid-configuration`,
      'api-version': '1.1',
      metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }],
    },
  };
}

type AssertionProblem = { code: number; description: string };

function verifyAssertion(assertion: string, state: IdentityState, tokenEndpoints: string[], now: Date): AssertionProblem | undefined {
  const malformed = { code: 50027, description: 'JWT token is invalid or malformed.' };
  const [headerPart, payloadPart, signaturePart, extra] = assertion.split('.');
  if (!headerPart || !payloadPart || !signaturePart || extra !== undefined) return malformed;
  let header: Record<string, unknown>;
  let payload: Record<string, unknown>;
  try {
    header = JSON.parse(Buffer.from(headerPart, 'base64url').toString('utf8'));
    payload = JSON.parse(Buffer.from(payloadPart, 'base64url').toString('utf8'));
  } catch {
    return malformed;
  }
  const sha256 = header['x5t#S256'];
  const sha1 = header['x5t'];
  const thumbprint = typeof sha256 === 'string' ? sha256 : typeof sha1 === 'string' ? sha1 : undefined;
  const certificate = thumbprint === undefined ? undefined : state.certificates.find((cert) => (typeof sha256 === 'string'
    ? createHash('sha256').update(cert.raw).digest('base64url') === sha256
    : createHash('sha1').update(cert.raw).digest('base64url') === sha1));
  if (!certificate) {
    const shown = thumbprint === undefined ? 'none' : Buffer.from(thumbprint, 'base64url').toString('hex').toUpperCase();
    return { code: 700027, description: `Client assertion contains an invalid signature. [Reason - The key was not found., Thumbprint of key used by client: '${shown}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '${state.clientId}'.]` };
  }
  const data = Buffer.from(`${headerPart}.${payloadPart}`);
  const signature = Buffer.from(signaturePart, 'base64url');
  const key = certificate.publicKey;
  const signed = header['alg'] === 'PS256'
    ? verify('sha256', data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_AUTO }, signature)
    : header['alg'] === 'RS256' && verify('sha256', data, key, signature);
  if (!signed) {
    return { code: 700027, description: 'Client assertion contains an invalid signature. [Reason - The provided signature value did not match the expected signature value.]' };
  }
  if (payload['iss'] !== state.clientId || payload['sub'] !== state.clientId) {
    return { code: 700021, description: 'Client assertion application identifier doesn\'t match \'client_id\' parameter.' };
  }
  if (typeof payload['aud'] !== 'string' || !tokenEndpoints.includes(payload['aud'])) {
    return { code: 700212, description: `Client assertion audience claim does not match Realm issuer. Review the documentation at https://aka.ms/certCreds.` };
  }
  const seconds = now.getTime() / 1000;
  const expires = payload['exp'];
  const notBefore = payload['nbf'];
  if (typeof expires !== 'number' || expires < seconds || (typeof notBefore === 'number' && notBefore > seconds + 300)) {
    return { code: 700024, description: `Client assertion is not within its valid time range. Current time: ${now.toISOString()}, assertion valid from ${typeof notBefore === 'number' ? new Date(notBefore * 1000).toISOString() : 'unknown'}, expiry time of assertion ${typeof expires === 'number' ? new Date(expires * 1000).toISOString() : 'unknown'}. Review the documentation at https://aka.ms/certCreds.` };
  }
  return undefined;
}

/** The public keys of the OIDC issuers Entra ID trusts (it fetches them from each issuer's published JWKS). */
export type IssuerKeys = (issuer: string) => KeyObject[] | undefined;

/**
 * A federated token as Entra ID checks it: a credential of the app for its issuer (AADSTS700211), one matching its
 * subject and audience (AADSTS70021), the issuer's signature, then its lifetime (AADSTS700024).
 */
function verifyFederated(parts: { header: string; payload: string; signature: string }, claims: Record<string, unknown>, state: IdentityState, issuerKeys: IssuerKeys, now: Date): AssertionProblem | undefined {
  const issuer = String(claims['iss']);
  const subject = String(claims['sub']);
  const audiences = Array.isArray(claims['aud']) ? claims['aud'].map(String) : [String(claims['aud'])];
  const forIssuer = state.federatedCredentials.filter((credential) => credential.issuer === issuer);
  if (forIssuer.length === 0) {
    return { code: 700211, description: `No matching federated identity record found for presented assertion issuer '${issuer}'. Please note that the matching is done using a case-sensitive comparison. Check your federated identity credential Subject, Audience and Issuer against the presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation` };
  }
  if (!forIssuer.some((credential) => credential.subject === subject && credential.audiences.some((audience) => audiences.includes(audience)))) {
    return { code: 70021, description: `No matching federated identity record found for presented assertion. Assertion Issuer: '${issuer}'. Assertion Subject: '${subject}'. Assertion Audience: '${audiences.join(',')}'. https://learn.microsoft.com/entra/workload-id/workload-identity-federation` };
  }
  const data = Buffer.from(`${parts.header}.${parts.payload}`);
  const signature = Buffer.from(parts.signature, 'base64url');
  if (!(issuerKeys(issuer) ?? []).some((key) => verify('sha256', data, key, signature))) {
    return { code: 50027, description: 'JWT token is invalid or malformed. The signature of the presented assertion does not match any key published by its issuer.' };
  }
  const seconds = now.getTime() / 1000;
  const expires = claims['exp'];
  const notBefore = claims['nbf'];
  if (typeof expires !== 'number' || expires < seconds || (typeof notBefore === 'number' && notBefore > seconds + 300)) {
    return { code: 700024, description: `Client assertion is not within its valid time range. Current time: ${now.toISOString()}, assertion valid from ${typeof notBefore === 'number' ? new Date(notBefore * 1000).toISOString() : 'unknown'}, expiry time of assertion ${typeof expires === 'number' ? new Date(expires * 1000).toISOString() : 'unknown'}. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .` };
  }
  return undefined;
}

/** The claims of a JWT, without checking anything; undefined when it is not one. */
function jwtParts(token: string): { header: string; payload: string; signature: string; claims: Record<string, unknown> } | undefined {
  const [header, payload, signature, extra] = token.split('.');
  if (!header || !payload || !signature || extra !== undefined) return undefined;
  try {
    const claims: unknown = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    return typeof claims === 'object' && claims !== null ? { header, payload, signature, claims: claims as Record<string, unknown> } : undefined;
  } catch {
    return undefined;
  }
}

function isCertificateAssertion(header: string): boolean {
  try {
    const fields = JSON.parse(Buffer.from(header, 'base64url').toString('utf8')) as Record<string, unknown>;
    return 'x5t' in fields || 'x5t#S256' in fields;
  } catch {
    return true;
  }
}

/** `POST /{tenant}/oauth2/v2.0/token` with a client-credentials grant. */
export function tokenRequest(
  tenant: string,
  form: URLSearchParams,
  context: { directory: Directory; apiRoot: string; authorityHost: string; now: Date; graphRoot?: string; issuerKeys?: IssuerKeys },
): HttpAnswer {
  const { now } = context;
  const lookup = lookUpTenant(tenant, context.directory);
  const refused = tenantRefusal(tenant, lookup, now, 'invalid_request');
  if (refused) return refused;
  if (form.get('grant_type') === null) {
    return aadError(now, 400, 'invalid_request', 900144, "The request body must contain the following parameter: 'grant_type'.");
  }
  if (form.get('grant_type') !== 'client_credentials') {
    return aadError(now, 400, 'unsupported_grant_type', 70003, 'The app requested an unsupported grant type.');
  }
  if (lookup.kind !== 'tenant') {
    return aadError(now, 400, 'invalid_request', 50059, 'No tenant-identifying information found in either the request or implied by any provided credentials.');
  }
  const state = lookup.state;
  const clientId = form.get('client_id');
  if (!clientId) return aadError(now, 400, 'invalid_request', 900144, "The request body must contain the following parameter: 'client_id'.");
  if (clientId !== state.clientId) {
    return aadError(now, 400, 'unauthorized_client', 700016, `Application with identifier '${clientId}' was not found in the directory '${state.tenantDomain}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`);
  }
  const scope = form.get('scope');
  if (!scope) return aadError(now, 400, 'invalid_request', 900144, "The request body must contain the following parameter: 'scope'.");
  const scopes = scope.trim().split(/\s+/);
  if (scopes.length !== 1 || !/^https?:\/\/[^\s]+$|^[0-9a-f-]{36}\//i.test(scopes[0]!)) {
    return aadError(now, 400, 'invalid_scope', 70011, `The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope ${scope} is not valid.`);
  }
  if (!scope.endsWith('/.default')) {
    return aadError(now, 400, 'invalid_scope', 1002012, `The provided value for scope ${scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`);
  }
  const resource = scope.slice(0, -'/.default'.length);
  if (resource !== context.apiRoot && resource !== context.graphRoot && !otherResources.includes(resource)) {
    return aadError(now, 400, 'invalid_resource', 500011, `The resource principal named ${resource} was not found in the tenant named ${state.tenantDomain}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.`);
  }
  const secret = form.get('client_secret');
  const assertion = form.get('client_assertion');
  if (secret !== null && assertion !== null) {
    return aadError(now, 401, 'invalid_client', 7000218, "The request body must contain only one of the following parameters: 'client_assertion', 'client_secret'.");
  }
  if (secret !== null) {
    const match = state.secrets.find((candidate) => candidate.value === secret);
    if (!match) {
      return aadError(now, 401, 'invalid_client', 7000215, `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${clientId}'.`);
    }
    if (match.expires && match.expires <= now) {
      return aadError(now, 401, 'invalid_client', 7000222, `The provided client secret keys for app '${clientId}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.`);
    }
  } else if (assertion !== null) {
    if (form.get('client_assertion_type') !== assertionType) {
      return aadError(now, 400, 'invalid_request', 90014, "The required field 'client_assertion_type' is missing from the credential. Ensure that you have all the necessary parameters for the login request.");
    }
    const parts = jwtParts(assertion);
    // An assertion the app signed with its certificate names the certificate (x5t); a federated token names its issuer's key.
    if (parts && !isCertificateAssertion(parts.header)) {
      // The issuer signs by the stand-in's clock (tests move it to expire a token), not by this machine's.
      const problem = verifyFederated(parts, parts.claims, state, context.issuerKeys ?? (() => undefined), now);
      if (problem) return aadError(now, 401, 'invalid_client', problem.code, problem.description);
    } else {
      // The assertion's audience may name the tenant by id or by the name the client used.
      const endpoints = [...new Set([tenant, state.tenantId])].map((name) => `${context.authorityHost}/${name}/oauth2/v2.0/token`);
      // The client signs its assertion by its own wall clock, which a test's injected service clock may be far from.
      const problem = verifyAssertion(assertion, state, endpoints, new Date());
      if (problem) return aadError(now, 401, 'invalid_client', problem.code, problem.description);
    }
  } else {
    return aadError(now, 401, 'invalid_client', 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
  }
  const iat = Math.floor(now.getTime() / 1000);
  const token = issueAccessToken({
    iss: `https://sts.windows.net/${state.tenantId}/`, tid: state.tenantId, appid: clientId, aud: resource,
    // A token carries the app roles granted on its resource: Graph's for Graph, the Management API's otherwise.
    roles: [...(resource === context.graphRoot ? state.graphRoles : state.grantedRoles)], iat, nbf: iat, exp: iat + state.tokenLifetimeSeconds, jti: randomUUID(), gen: state.generation,
  }, state.signingKey);
  return { status: 200, body: { token_type: 'Bearer', expires_in: state.tokenLifetimeSeconds, ext_expires_in: state.tokenLifetimeSeconds, access_token: token } };
}
