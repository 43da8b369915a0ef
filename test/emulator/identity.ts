/**
 * The Microsoft identity platform as far as a daemon sees it: OpenID metadata, instance discovery, and the
 * client-credentials token endpoint (client secret or certificate assertion), with the real AADSTS error shapes.
 * Access tokens are HMAC-signed by the stand-in and checked by the activity feed for tenant, audience, expiry,
 * roles and revocation.
 */
import { createHmac, createHash, createPublicKey, randomUUID, timingSafeEqual, verify, X509Certificate, constants } from 'node:crypto';

export interface IdentityState {
  readonly tenantId: string;
  readonly clientId: string;
  /** Secrets the app accepts, with an optional expiry. */
  readonly secrets: Array<{ value: string; expires: Date | undefined }>;
  readonly certificates: X509Certificate[];
  grantedRoles: string[];
  tokenLifetimeSeconds: number;
  /** Tokens of an earlier generation are rejected (revocation). */
  generation: number;
}

export interface TokenClaims {
  readonly tid: string;
  readonly appid: string;
  readonly aud: string;
  readonly roles: string[];
  readonly iat: number;
  readonly exp: number;
  readonly jti: string;
  readonly gen: number;
}

export interface HttpAnswer {
  readonly status: number;
  readonly body: unknown;
  readonly headers?: Record<string, string>;
}

const signingKey = randomUUID();

function base64url(data: string | Buffer): string {
  return Buffer.from(data).toString('base64url');
}

export function issueAccessToken(claims: TokenClaims): string {
  const header = base64url(JSON.stringify({ typ: 'JWT', alg: 'HS256' }));
  const payload = base64url(JSON.stringify(claims));
  const signature = createHmac('sha256', signingKey).update(`${header}.${payload}`).digest('base64url');
  return `${header}.${payload}.${signature}`;
}

export function readAccessToken(token: string): TokenClaims | undefined {
  const [header, payload, signature] = token.split('.');
  if (!header || !payload || !signature) return undefined;
  const expected = createHmac('sha256', signingKey).update(`${header}.${payload}`).digest('base64url');
  const a = Buffer.from(signature);
  const b = Buffer.from(expected);
  if (a.length !== b.length || !timingSafeEqual(a, b)) return undefined;
  try {
    return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as TokenClaims;
  } catch {
    return undefined;
  }
}

function aadError(status: number, error: string, code: number, description: string): HttpAnswer {
  const traceId = randomUUID();
  const correlationId = randomUUID();
  const timestamp = new Date().toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  return {
    status,
    body: {
      error,
      error_description: `AADSTS${code}: ${description} Trace ID: ${traceId} Correlation ID: ${correlationId} Timestamp: ${timestamp}`,
      error_codes: [code],
      timestamp,
      trace_id: traceId,
      correlation_id: correlationId,
      error_uri: `https://login.microsoftonline.com/error?code=${code}`,
    },
  };
}

export function openIdConfiguration(authorityHost: string, tenant: string): HttpAnswer {
  const base = `${authorityHost}/${tenant}`;
  return {
    status: 200,
    body: {
      token_endpoint: `${base}/oauth2/v2.0/token`,
      token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
      jwks_uri: `${authorityHost}/${tenant}/discovery/v2.0/keys`,
      response_modes_supported: ['query', 'fragment', 'form_post'],
      subject_types_supported: ['pairwise'],
      id_token_signing_alg_values_supported: ['RS256'],
      response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      issuer: `${authorityHost}/${tenant}/v2.0`,
      request_uri_parameter_supported: false,
      userinfo_endpoint: 'https://graph.microsoft.com/oidc/userinfo',
      authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
      device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
      http_logout_supported: true,
      frontchannel_logout_supported: true,
      end_session_endpoint: `${base}/oauth2/v2.0/logout`,
      claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'tid'],
      kerberos_endpoint: `${base}/kerberos`,
      tenant_region_scope: 'EU',
      cloud_instance_name: 'microsoftonline.com',
      cloud_graph_host_name: 'graph.windows.net',
      msgraph_host: 'graph.microsoft.com',
    },
  };
}

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

function verifyAssertion(assertion: string, state: IdentityState, tokenEndpoint: string, now: Date): string | undefined {
  const [headerPart, payloadPart, signaturePart] = assertion.split('.');
  if (!headerPart || !payloadPart || !signaturePart) return 'the client assertion is not a JWT';
  let header: Record<string, string>;
  let payload: Record<string, unknown>;
  try {
    header = JSON.parse(Buffer.from(headerPart, 'base64url').toString('utf8'));
    payload = JSON.parse(Buffer.from(payloadPart, 'base64url').toString('utf8'));
  } catch {
    return 'the client assertion is not a JWT';
  }
  const thumbprint = header['x5t#S256'] ?? header['x5t'];
  const certificate = state.certificates.find((cert) => {
    const der = cert.raw;
    return header['x5t#S256'] !== undefined
      ? createHash('sha256').update(der).digest('base64url') === thumbprint
      : createHash('sha1').update(der).digest('base64url') === thumbprint;
  });
  if (!certificate) return 'no certificate with the thumbprint in the assertion is registered for the application';
  const data = Buffer.from(`${headerPart}.${payloadPart}`);
  const signature = Buffer.from(signaturePart, 'base64url');
  const key = createPublicKey(certificate.publicKey.export({ type: 'spki', format: 'pem' }));
  const ok = header['alg'] === 'PS256'
    ? verify('sha256', data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, signature)
    : header['alg'] === 'RS256' && verify('sha256', data, key, signature);
  if (!ok) return 'the client assertion signature is invalid';
  if (payload['iss'] !== state.clientId || payload['sub'] !== state.clientId) return 'the client assertion issuer or subject is not the client id';
  if (payload['aud'] !== tokenEndpoint) return `the client assertion audience must be ${tokenEndpoint}`;
  if (typeof payload['exp'] !== 'number' || payload['exp'] * 1000 < now.getTime()) return 'the client assertion has expired';
  return undefined;
}

/** `POST /{tenant}/oauth2/v2.0/token` with a client-credentials grant. */
export function tokenRequest(
  tenant: string,
  form: URLSearchParams,
  context: { state: IdentityState; apiRoot: string; authorityHost: string; now: Date },
): HttpAnswer {
  const { state, now } = context;
  if (tenant !== state.tenantId && tenant.toLowerCase() !== 'organizations') {
    return aadError(400, 'invalid_request', 90002, `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`);
  }
  if (form.get('grant_type') !== 'client_credentials') {
    return aadError(400, 'unsupported_grant_type', 70003, 'The app requested an unsupported grant type.');
  }
  const clientId = form.get('client_id') ?? '';
  if (clientId !== state.clientId) {
    return aadError(400, 'unauthorized_client', 700016, `Application with identifier '${clientId}' was not found in the directory '${tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.`);
  }
  const scope = form.get('scope') ?? '';
  if (!scope.endsWith('/.default')) {
    return aadError(400, 'invalid_scope', 1002012, `The provided value for scope ${scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`);
  }
  if (scope !== `${context.apiRoot}/.default`) {
    return aadError(400, 'invalid_scope', 500011, `The resource principal named ${scope.replace('/.default', '')} was not found in the tenant named ${tenant}.`);
  }
  const secret = form.get('client_secret');
  const assertion = form.get('client_assertion');
  if (secret !== null) {
    const match = state.secrets.find((candidate) => candidate.value === secret);
    if (!match) {
      return aadError(401, 'invalid_client', 7000215, `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${clientId}'.`);
    }
    if (match.expires && match.expires <= now) {
      return aadError(401, 'invalid_client', 7000222, `The provided client secret keys for app '${clientId}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.`);
    }
  } else if (assertion !== null) {
    if (form.get('client_assertion_type') !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer') {
      return aadError(400, 'invalid_request', 50027, 'JWT token is invalid or malformed.');
    }
    const problem = verifyAssertion(assertion, state, `${context.authorityHost}/${tenant}/oauth2/v2.0/token`, now);
    if (problem) return aadError(401, 'invalid_client', 700027, `Client assertion failed signature validation: ${problem}.`);
  } else {
    return aadError(401, 'invalid_client', 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.");
  }
  const iat = Math.floor(now.getTime() / 1000);
  const token = issueAccessToken({
    tid: state.tenantId, appid: clientId, aud: context.apiRoot, roles: [...state.grantedRoles],
    iat, exp: iat + state.tokenLifetimeSeconds, jti: randomUUID(), gen: state.generation,
  });
  return { status: 200, body: { token_type: 'Bearer', expires_in: state.tokenLifetimeSeconds, ext_expires_in: state.tokenLifetimeSeconds, access_token: token } };
}
