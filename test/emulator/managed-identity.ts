/**
 * The managed identity endpoint of an Azure host, on 127.0.0.1 over plain HTTP as the real ones are local: the App
 * Service / Container Apps / Functions form (`GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=…[&client_id=…]`
 * with the `X-IDENTITY-HEADER` header holding IDENTITY_HEADER) and the instance metadata form of VMs
 * (`GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=…` with `Metadata: true`; msal asks it at
 * AZURE_POD_IDENTITY_AUTHORITY_HOST when set). Tokens are the stand-in's, for the identity's tenant, carrying the app
 * roles assigned to the identity: the activity feed checks them as any other token.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { randomBytes, randomUUID } from 'node:crypto';
import { issueAccessToken, type IdentityState } from './identity.ts';

export interface ManagedIdentityOptions {
  /** A user-assigned identity answers only when asked by its client id; the system-assigned one only when asked by none. Default user. */
  readonly assignment?: 'user' | 'system';
  readonly clientId?: string;
  /** Office 365 Management APIs roles assigned to the identity; default ActivityFeed.Read, ActivityFeed.ReadDlp. */
  readonly roles?: string[];
  /** Microsoft Graph roles assigned to the identity; default none. */
  readonly graphRoles?: string[];
}

export interface ManagedIdentityEndpoint {
  /** What App Service sets as IDENTITY_ENDPOINT. */
  readonly identityEndpoint: string;
  /** What App Service sets as IDENTITY_HEADER: the endpoint refuses requests without it. */
  readonly identityHeader: string;
  /** The instance metadata endpoint's root, for AZURE_POD_IDENTITY_AUTHORITY_HOST. */
  readonly imdsHost: string;
  readonly clientId: string;
  /** The identity's service principal (object id), as the stack's managedIdentityPrincipalId names it. */
  readonly principalId: string;
  setRoles(roles: string[]): void;
  /** Tokens issued so far. */
  tokensIssued(): number;
  stop(): Promise<void>;
}

export interface ManagedIdentityContext {
  /** The tenant the identity lives in (its generation revokes tokens as for the app's). */
  readonly tenant: () => IdentityState;
  readonly signingKey: string;
  readonly apiRoot: () => string;
  readonly graphRoot: () => string;
  readonly now: () => Date;
}

interface Answer { status: number; body: unknown }

export async function startManagedIdentityEndpoint(context: ManagedIdentityContext, options: ManagedIdentityOptions = {}): Promise<Omit<ManagedIdentityEndpoint, 'identityEndpoint' | 'imdsHost'> & { port: number }> {
  const identityHeader = randomBytes(16).toString('hex');
  const clientId = options.clientId ?? randomUUID();
  const principalId = randomUUID();
  const assignment = options.assignment ?? 'user';
  let roles = [...(options.roles ?? ['ActivityFeed.Read', 'ActivityFeed.ReadDlp'])];
  const graphRoles = [...(options.graphRoles ?? [])];
  let issued = 0;
  const sockets = new Set<Socket>();

  function token(query: URLSearchParams, form: 'appService' | 'imds'): Answer {
    const resource = (query.get('resource') ?? '').replace(/\/\.default$/, '').replace(/\/$/, '');
    const asked = query.get('client_id') ?? query.get('clientid');
    const known = assignment === 'user' ? asked === clientId : asked === null;
    if (!known) return { status: 400, body: { error: 'invalid_request', error_description: 'Identity not found' } };
    const tenant = context.tenant();
    if (resource !== context.apiRoot() && resource !== context.graphRoot()) {
      return { status: 400, body: { error: 'invalid_resource', error_description: `AADSTS500011: The resource principal named ${resource} was not found in the tenant named ${tenant.tenantDomain}.` } };
    }
    const iat = Math.floor(context.now().getTime() / 1000);
    const exp = iat + tenant.tokenLifetimeSeconds;
    const accessToken = issueAccessToken({
      iss: `https://sts.windows.net/${tenant.tenantId}/`, tid: tenant.tenantId, appid: clientId, aud: resource,
      roles: [...(resource === context.graphRoot() ? graphRoles : roles)], iat, nbf: iat, exp, jti: randomUUID(), gen: tenant.generation,
    }, context.signingKey);
    issued += 1;
    return form === 'appService'
      ? { status: 200, body: { access_token: accessToken, expires_on: String(exp), resource, token_type: 'Bearer', client_id: clientId } }
      : { status: 200, body: { access_token: accessToken, client_id: clientId, expires_in: String(tenant.tokenLifetimeSeconds), expires_on: String(exp), ext_expires_in: String(tenant.tokenLifetimeSeconds), not_before: String(iat), resource, token_type: 'Bearer' } };
  }

  function answer(request: IncomingMessage): Answer {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    if (request.method !== 'GET') return { status: 405, body: { error: 'invalid_request', error_description: 'Only GET is supported' } };
    if (url.pathname === '/msi/token') {
      if (request.headers['x-identity-header'] !== identityHeader) return { status: 401, body: { statusCode: 401, message: 'Unauthorized: the X-IDENTITY-HEADER header is missing or wrong' } };
      if (url.searchParams.get('api-version') !== '2019-08-01') return { status: 400, body: { statusCode: 400, message: 'api-version 2019-08-01 is required' } };
      return token(url.searchParams, 'appService');
    }
    if (url.pathname === '/metadata/identity/oauth2/token') {
      if (request.headers['metadata'] !== 'true') return { status: 400, body: { error: 'invalid_request', error_description: 'Required metadata header not specified' } };
      return token(url.searchParams, 'imds');
    }
    return { status: 404, body: { error: 'not_found', error_description: `no such endpoint ${url.pathname}` } };
  }

  const server: Server = createServer((request: IncomingMessage, response: ServerResponse) => {
    request.resume();
    request.on('end', () => {
      const { status, body } = answer(request);
      const bytes = Buffer.from(JSON.stringify(body));
      response.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': String(bytes.length) });
      response.end(bytes);
    });
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    identityHeader, clientId, principalId,
    setRoles: (next) => { roles = [...next]; },
    tokensIssued: () => issued,
    stop: () => new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    }),
  };
}
