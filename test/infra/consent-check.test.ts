import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { connect, createServer as createTcpServer, type AddressInfo, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenRoles } from '../../infra/consent-check.ts';

/** A token endpoint answering as the identity platform does; the last request's form is kept. */
let answer: (response: ServerResponse) => void = () => {};
let lastForm: URLSearchParams | undefined;
let lastPath = '';
const server = createServer((request: IncomingMessage, response: ServerResponse) => {
  let body = '';
  request.on('data', (chunk: Buffer) => { body += chunk.toString('utf8'); });
  request.on('end', () => {
    lastPath = request.url ?? '';
    lastForm = new URLSearchParams(body);
    answer(response);
  });
});
let authorityHost = '';
beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  authorityHost = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const json = (status: number, body: unknown) => (response: ServerResponse) => {
  response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
};
const jwt = (claims: Record<string, unknown>) => ['{"alg":"RS256","typ":"JWT"}', JSON.stringify(claims)].map((part) => Buffer.from(part).toString('base64url')).join('.') + '.signature';
const request = () => ({ authorityHost, apiRoot: 'https://manage.office.com', tenantId: '7d1e4c2a-5b6f-4a8e-9c0d-1e2f3a4b5c6d', clientId: '3f9a6c2e-8d41-4b7a-9e05-6c1d2b3a4f58', clientSecret: 'home-secret' });

describe('the granted-roles check of verify-only customer stacks', () => {
  it('asks for an app-only token for the Management API in the customer tenant and reads its roles claim', async () => {
    answer = json(200, { token_type: 'Bearer', expires_in: 3599, access_token: jwt({ roles: ['ActivityFeed.Read', 'ServiceHealth.Read'], tid: '7d1e4c2a-5b6f-4a8e-9c0d-1e2f3a4b5c6d' }) });
    expect(await tokenRoles(request())).toEqual(['ActivityFeed.Read', 'ServiceHealth.Read']);
    expect(lastPath).toBe('/7d1e4c2a-5b6f-4a8e-9c0d-1e2f3a4b5c6d/oauth2/v2.0/token');
    expect(Object.fromEntries(lastForm!)).toEqual({
      grant_type: 'client_credentials', client_id: '3f9a6c2e-8d41-4b7a-9e05-6c1d2b3a4f58', client_secret: 'home-secret', scope: 'https://manage.office.com/.default',
    });
  });

  it('reads a token without a roles claim as no permission granted', async () => {
    answer = json(200, { access_token: jwt({ tid: '7d1e4c2a-5b6f-4a8e-9c0d-1e2f3a4b5c6d' }) });
    expect(await tokenRoles(request())).toEqual([]);
  });

  it('reads AADSTS700016 (app not found in the tenant) as no consent at all', async () => {
    answer = json(400, { error: 'unauthorized_client', error_description: "AADSTS700016: Application with identifier '3f9a6c2e' was not found in the directory 'Fabrikam'.\r\nTrace ID: x" });
    expect(await tokenRoles(request())).toBeUndefined();
  });

  it('stops with one line, never the secret, on any other refusal', async () => {
    answer = json(401, { error: 'invalid_client', error_description: 'AADSTS7000215: Invalid client secret provided.\r\nTrace ID: 1 Correlation ID: 2' });
    const failure = tokenRoles(request());
    await expect(failure).rejects.toThrow(/^o365-connector:consent: cannot check the app's permissions in tenant 7d1e4c2a-5b6f-4a8e-9c0d-1e2f3a4b5c6d: AADSTS7000215: Invalid client secret provided\.$/);
    await expect(failure).rejects.not.toThrow(/home-secret/);
  });

  it('stops with one line naming the host and the error code when the token endpoint is unreachable', async () => {
    const closed = createTcpServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const failure = tokenRoles({ ...request(), authorityHost: `http://127.0.0.1:${port}` }, { env: {} });
    await expect(failure).rejects.toMatchObject({ name: 'ConsentMissingError' });
    await expect(failure).rejects.toThrow(new RegExp(`^o365-connector:consent: cannot reach 127\\.0\\.0\\.1:${port} to check the app's permissions in tenant 7d1e4c2a-5b6f-4a8e-9c0d-1e2f3a4b5c6d: ECONNREFUSED[^\\n]*$`));
  });

  it('stops with one line naming the host when the token endpoint does not answer in time', async () => {
    const sockets: Socket[] = [];
    const silent = createTcpServer((socket) => { sockets.push(socket); });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as AddressInfo).port;
    try {
      const failure = tokenRoles({ ...request(), authorityHost: `http://127.0.0.1:${port}` }, { env: {}, timeoutMs: 200 });
      await expect(failure).rejects.toThrow(new RegExp(`^o365-connector:consent: cannot reach 127\\.0\\.0\\.1:${port} [^\\n]*: TIMEOUT[^\\n]*$`));
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it('goes through the proxy HTTP(S)_PROXY names, and direct to a host NO_PROXY names', async () => {
    const seen: string[] = [];
    // A forward proxy: absolute-form requests (http targets) are passed on, CONNECT (https targets) is tunnelled.
    const proxy = createServer((incoming, response) => {
      seen.push(`${incoming.method} ${incoming.url}`);
      const onward = httpRequest(incoming.url!, { method: incoming.method, headers: incoming.headers }, (reply) => { response.writeHead(reply.statusCode!, reply.headers); reply.pipe(response); });
      onward.on('error', () => response.writeHead(502).end());
      incoming.pipe(onward);
    });
    proxy.on('connect', (incoming: IncomingMessage, client: Socket, head: Buffer) => {
      seen.push(`CONNECT ${incoming.url}`);
      const [host, port] = (incoming.url ?? '').split(':');
      const upstream = connect(Number(port), host, () => {
        client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
        upstream.write(head);
        upstream.pipe(client);
        client.pipe(upstream);
      });
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    const proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    try {
      answer = json(200, { access_token: jwt({ roles: ['ActivityFeed.Read'] }) });
      expect(await tokenRoles(request(), { env: { HTTPS_PROXY: proxyUrl, HTTP_PROXY: proxyUrl } })).toEqual(['ActivityFeed.Read']);
      expect(seen).toHaveLength(1);
      expect(seen[0]).toMatch(/127\.0\.0\.1:\d+/);
      expect(await tokenRoles(request(), { env: { HTTPS_PROXY: proxyUrl, HTTP_PROXY: proxyUrl, NO_PROXY: '127.0.0.1' } })).toEqual(['ActivityFeed.Read']);
      expect(seen).toHaveLength(1);
    } finally {
      proxy.closeAllConnections();
      await new Promise<void>((resolve) => proxy.close(() => resolve()));
    }
  });
});
