/**
 * A local HTTPS stand-in for the Microsoft identity platform and the Office 365 Management Activity API, for
 * tests, the benchmark and the demo. Deterministic from a seed, faithful to the documented contract (never
 * friendlier), with faults on demand, counters to read, and the exact ground truth of what it can serve.
 *
 * One server serves any number of tenants, as Microsoft does: one authority host and one API root, the tenant
 * named in the path (`/{tenant}/oauth2/v2.0/token`, `/api/v1.0/{tenantId}/activity/feed/...`). The emulator's own
 * fields and methods are those of its first tenant, except `counters()`, which are the totals.
 */
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { randomBytes, type KeyObject } from 'node:crypto';
import { afError, authenticate, handleFeed, routeOf } from './activity-feed.ts';
import { aadError, instanceDiscovery, openIdConfiguration, tokenRequest, type Directory, type HttpAnswer } from './identity.ts';
import type { FaultDecision } from './faults.ts';
import { graphError, handleGraph, type GraphResource } from './service-announcements.ts';
import { readAccessToken } from './identity.ts';
import { ServedTenant, emptyCounters, type EmulatorCounters, type EmulatorTenant, type EmulatorTenantOptions } from './tenant.ts';
import { createTestPki, type TestPki } from './tls.ts';
import { LogsIngestionStandIn, readBytes } from './logs-ingestion.ts';
import { startManagedIdentityEndpoint, type ManagedIdentityEndpoint, type ManagedIdentityOptions } from './managed-identity.ts';

export type { Faults, FaultRule, FaultKind, FeedRoute } from './faults.ts';
export { parseFaultRule } from './faults.ts';
export type { AddContentOptions, BlobDescriptor, AuditRecordObject } from './corpus.ts';
export type { EmulatorCounters, EmulatorTenant, EmulatorTenantOptions } from './tenant.ts';
export type { AuditSearch, AuditSearchCounters, AuditSearchOptions, AuditSearchSettings, AuditQueryStatus } from './audit-search.ts';
export { auditDataOf, auditSearchDefaults, recordTypeNames } from './audit-search.ts';

const minute = 60_000;

/** The first tenant's options, and the defaults of every tenant added later (but for ids, secret and faults). */
export interface EmulatorOptions extends EmulatorTenantOptions {
  /** Port on 127.0.0.1; 0 (default) takes a free one. */
  port?: number;
  /** Seed of ids, secret, corpus and fault draws (each tenant's derived from it and its index); default 1. */
  seed?: number;
  /** Content entries per listing page; default 100. */
  pageSize?: number;
  /** Microsoft Graph items per page unless the client's Prefer asks for fewer; default 100, as Graph. */
  graphPageSize?: number;
  /** Milliseconds between ticks of the arrival generator (new blobs, webhook notifications); none by default. */
  arrivalIntervalMs?: number;
  /** The stand-in's clock; tests move it with `advance` or by changing what it returns. */
  now?: () => Date;
  /** Elapsed real milliseconds, on which quotas refill (default performance.now); tests may drive it by hand. */
  elapsedMs?: () => number;
  pki?: TestPki;
}

/** The stand-in: its first tenant's handle, plus the server, the shared clock and the other tenants. */
export interface Emulator extends EmulatorTenant {
  readonly port: number;
  /** Azure Monitor's Logs Ingestion API (the Sentinel sink's destination), on the same origin; the first tenant's app holds the role. */
  readonly logsIngestion: LogsIngestionStandIn;
  readonly caCertPem: string;
  advance(milliseconds: number): void;
  /** Totals over every tenant (and requests that named none). */
  counters(): EmulatorCounters;
  /** Resets the totals and every tenant's counters and fault numbering. */
  resetCounters(): void;
  /** One step of the arrival generator: new blobs if configured, then webhook notifications of what became visible. */
  tick(): Promise<void>;
  /**
   * Serves one more tenant at once, on the same host and port. Ids and secret are drawn from the seed and the
   * tenant's index unless given; the other options default to those the emulator started with (faults to none).
   */
  addTenant(options?: EmulatorTenantOptions): EmulatorTenant;
  /** Stops serving a tenant: it then answers as an unknown one, and its tokens are refused. False if it was not served. */
  removeTenant(tenantId: string): boolean;
  /** The tenants served now, in the order they were added (the first tenant first, unless removed). */
  tenants(): EmulatorTenant[];
  /** Trusts an OIDC issuer's key, as Entra ID trusts the keys an issuer publishes (workload identity federation). */
  trustIssuer(issuer: string, publicKey: KeyObject): void;
  /** Serves the managed identity endpoint of an Azure host whose identity lives in the first tenant (or `tenantId`'s). */
  serveManagedIdentity(options?: ManagedIdentityOptions & { tenantId?: string }): Promise<ManagedIdentityEndpoint>;
  stop(): Promise<void>;
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

const noFault: FaultDecision = { throttle: false, serverError: false, drop: false, expired: false, revoke: false, latencyMs: 0 };

export async function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const seed = options.seed ?? 1;
  const pki = options.pki ?? (await createTestPki());
  const baseClock = options.now ?? (() => new Date());
  let offset = 0;
  const now = () => new Date(baseClock().getTime() + offset);
  const pageKey = randomBytes(32).toString('hex');
  const startedAt = now();
  let totals = emptyCounters();
  const pageSize = options.pageSize ?? 100;
  const sockets = new Set<Socket>();
  let port = 0;
  const origin = () => `https://127.0.0.1:${port}`;

  const context = {
    seed, now, startedAt, origin, caFile: pki.caFile, caCertPem: pki.caCertPem,
    // One signing key for all tenants, as Entra signs every tenant's tokens with the same keys: a token of one
    // tenant is genuine on another tenant's URL, and refused there for its tid (AF20010).
    signingKey: randomBytes(32).toString('hex'),
    totals: () => totals,
  };
  /** Served tenants by lower-case id, and by lower-case domain for the token endpoint. */
  const byId = new Map<string, ServedTenant>();
  const byDomain = new Map<string, ServedTenant>();
  let created = 0;
  // Tenants added later start from the first tenant's options, but for its ids, secret and faults.
  const { tenantId: _tenantId, tenantDomain: _tenantDomain, clientId: _clientId, clientSecret: _clientSecret, faults: _faults, ...tenantDefaults } = options;

  function serve(tenantOptions: EmulatorTenantOptions): ServedTenant {
    const tenant = new ServedTenant(created, tenantOptions, context);
    const id = tenant.identity.tenantId.toLowerCase();
    const domain = tenant.identity.tenantDomain.toLowerCase();
    if (byId.has(id) || byDomain.has(domain)) throw new Error(`the stand-in already serves tenant ${tenant.identity.tenantId} or domain ${tenant.identity.tenantDomain}`);
    created += 1;
    byId.set(id, tenant);
    byDomain.set(domain, tenant);
    return tenant;
  }

  const first = serve(options);
  const logsIngestion = new LogsIngestionStandIn(seed, context.signingKey);
  logsIngestion.grant(first.identity.tenantId, first.identity.clientId);
  const issuerKeys = new Map<string, KeyObject[]>();
  const managedIdentities: ManagedIdentityEndpoint[] = [];
  const directory: Directory = (name) => (byId.get(name.toLowerCase()) ?? byDomain.get(name.toLowerCase()))?.identity;
  const tenantNamed = (name: string) => byId.get(name.toLowerCase()) ?? byDomain.get(name.toLowerCase());

  /** The tenant a request's path names, if the stand-in serves it: its counters count the request too. */
  function tenantOfPath(pathname: string): ServedTenant | undefined {
    const named = /^\/api\/v1\.0\/([^/]+)\/activity\/feed\//.exec(pathname) ?? /^\/([^/]+)\/(?:oauth2\/v2\.0\/token|v2\.0\/\.well-known\/openid-configuration)$/.exec(pathname);
    if (!named) return undefined;
    try { return tenantNamed(decodeURIComponent(named[1]!)); } catch { return undefined; }
  }

  /** Applies a change to the totals and, when the request names a served tenant, to that tenant's counters. */
  function count(tenant: ServedTenant | undefined, change: (counters: EmulatorCounters) => void): void {
    if (tenant) tenant.count(change); else change(totals);
  }

  function tally(record: Record<string, number>, key: string): void {
    record[key] = (record[key] ?? 0) + 1;
  }

  function bodyOf(answer: HttpAnswer): Buffer {
    if (Buffer.isBuffer(answer.body)) return answer.body;
    return Buffer.from(typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body), 'utf8');
  }

  function send(tenant: ServedTenant | undefined, response: ServerResponse, answer: HttpAnswer): void {
    const body = bodyOf(answer);
    count(tenant, (counters) => {
      counters.bytesServed += body.length;
      tally(counters.byStatus, String(answer.status));
      if (answer.status === 401) counters.unauthorized += 1;
    });
    response.writeHead(answer.status, {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': String(body.length),
      'Cache-Control': 'no-cache',
      Date: now().toUTCString(),
      ...answer.headers,
    });
    response.end(body);
  }

  /** Sends the headers and part of the body, then cuts the connection, as a dropped transfer looks to a client. */
  function sendCut(tenant: ServedTenant | undefined, response: ServerResponse, answer: HttpAnswer): void {
    const body = bodyOf(answer);
    const part = body.subarray(0, Math.max(1, Math.floor(body.length / 2)));
    count(tenant, (counters) => {
      counters.dropped += 1;
      counters.bytesServed += part.length;
      tally(counters.byStatus, String(answer.status));
    });
    response.writeHead(answer.status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': String(body.length), Date: now().toUTCString() });
    response.write(part, () => response.socket?.destroy());
  }

  /**
   * Quotas run on elapsed real time (plus `advance`), not on the content clock: a test that freezes the
   * content clock must still see the budget refill every minute, as it does at Microsoft.
   */
  const elapsedMs = options.elapsedMs ?? (() => performance.now());
  const quotaMinute = () => Math.floor((elapsedMs() + offset) / minute);

  function throttled(tenant: ServedTenant, method: string, publisher: string): HttpAnswer {
    tenant.count((counters) => { counters.throttled += 1; });
    const faults = tenant.faultPlan.faults;
    return {
      ...afError(faults.throttleStatus ?? 429, 'AF429', `Too many requests. Method=${method}, PublisherId=${publisher || '00000000-0000-0000-0000-000000000000'}`),
      ...(faults.retryAfterSeconds !== undefined ? { headers: { 'Retry-After': String(faults.retryAfterSeconds) } } : {}),
    };
  }

  function serverError(tenant: ServedTenant): HttpAnswer {
    tenant.count((counters) => { counters.serverErrors += 1; });
    const code = tenant.faultPlan.faults.serverErrorCode ?? 'AF50000';
    if (code === '503') return { status: 503, body: 'Service Unavailable', headers: { 'Content-Type': 'text/html' } };
    return afError(500, code, 'An internal error occurred. Retry the request.');
  }

  async function identityRoute(tenant: ServedTenant | undefined, method: string, url: URL, body: string): Promise<HttpAnswer | undefined> {
    if (url.pathname === '/common/discovery/instance') return instanceDiscovery(origin());
    const openId = /^\/([^/]+)\/v2\.0\/\.well-known\/openid-configuration$/.exec(url.pathname);
    if (openId) return openIdConfiguration(origin(), decodeURIComponent(openId[1]!), directory, now());
    const token = /^\/([^/]+)\/oauth2\/v2\.0\/token$/.exec(url.pathname);
    if (!token) return undefined;
    count(tenant, (counters) => tally(counters.byRoute, 'token'));
    const answer = method === 'POST'
      ? tokenRequest(decodeURIComponent(token[1]!), new URLSearchParams(body), { directory, apiRoot: origin(), authorityHost: origin(), now: now(), graphRoot: `${origin()}/graph`, issuerKeys: (issuer) => issuerKeys.get(issuer) })
      : aadError(now(), 400, 'invalid_request', 900561, 'The endpoint only accepts POST, OPTIONS requests. Received a GET request.');
    count(tenant, (counters) => { if (answer.status === 200) counters.tokensIssued += 1; else counters.tokenFailures += 1; });
    return answer;
  }

  async function route(tenant: ServedTenant | undefined, url: URL, request: IncomingMessage, response: ServerResponse): Promise<void> {
    const method = request.method ?? 'GET';
    if (url.pathname.startsWith('/dataCollectionRules/')) {
      const answer = logsIngestion.handle(method, url, request.headers, await readBytes(request), now());
      return answer === 'drop' ? void request.socket.destroy() : send(undefined, response, answer);
    }
    const body = await readBody(request);
    count(tenant, (counters) => {
      counters.requests += 1;
      tally(counters.perMinute, now().toISOString().slice(0, 16));
    });

    // Not a Microsoft endpoint: lets the benchmark read the stand-in's counters from another process.
    if (url.pathname === '/_emulator/counters') return send(tenant, response, { status: 200, body: totals });
    const identityAnswer = await identityRoute(tenant, method, url, body);
    if (identityAnswer) return send(tenant, response, identityAnswer);

    const graph = /^\/graph\/v1\.0\/admin\/serviceAnnouncement\/(healthOverviews|issues|messages)$/.exec(url.pathname);
    if (graph) return send(undefined, response, graphRoute(graph[1] as GraphResource, url, request));
    const auditLog = /^\/graph\/(v1\.0|beta)\/security\/auditLog\/queries(?:\/([^/]+)(\/records)?)?$/.exec(url.pathname);
    if (auditLog) return send(undefined, response, auditSearchRoute(auditLog, method, body, url, request));
    if (url.pathname.startsWith('/graph/')) return send(tenant, response, graphError(400, 'BadRequest', `Resource not found for the segment '${url.pathname.split('/').at(-1)}'.`, now()));

    const feed = /^\/api\/v1\.0\/([^/]+)\/activity\/feed\/(.+)$/.exec(url.pathname);
    if (!feed) return send(tenant, response, { status: 404, body: { Message: `No HTTP resource was found that matches the request URI '${url.href}'.` } });
    const urlTenant = decodeURIComponent(feed[1]!);
    const path = feed[2]!;
    const routeName = routeOf(path);
    const publisher = url.searchParams.get('PublisherIdentifier') ?? '';
    count(tenant, (counters) => {
      counters.apiRequests += 1;
      tally(counters.byRoute, routeName);
      if (publisher === '') counters.missingPublisherIdentifier += 1;
    });

    // Faults are the tenant's: a URL naming no served tenant gets none.
    const fault = tenant?.faultPlan.decide(routeName) ?? noFault;
    if (fault.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, fault.latencyMs));
    if (fault.revoke && tenant) tenant.identity.generation += 1;
    const auth = authenticate(request.headers.authorization, urlTenant, {
      signingKey: context.signingKey, apiRoot: origin(), now: now(), generationOf: (tid) => byId.get(tid.toLowerCase())?.identity.generation,
    });
    if ('refusal' in auth) return send(tenant, response, auth.refusal);
    // Past authentication the URL names the token's tenant, which is served; the guard only narrows the type.
    if (!tenant) return send(tenant, response, afError(500, 'AF50000', 'An internal error occurred. Retry the request.'));
    if (!tenant.withinQuota(publisher, quotaMinute()) || fault.throttle) return send(tenant, response, throttled(tenant, method, publisher));
    if (fault.serverError) return send(tenant, response, serverError(tenant));

    if (routeName === 'audit' && fault.expired) {
      tenant.count((counters) => { counters.expiredServed += 1; });
      const contentId = decodeURIComponent(path.slice('audit/'.length));
      return send(tenant, response, afError(400, 'AF20051', `Content requested with the key ${contentId} has already expired. Content older than 7 days cannot be retrieved.`));
    }
    const answer = await handleFeed(method, path, url.searchParams, body, { acceptLanguage: request.headers['accept-language'] }, {
      tenantId: tenant.identity.tenantId, clientId: tenant.identity.clientId, apiRoot: origin(), corpus: tenant.corpus,
      subscriptions: tenant.subscriptions, now: now(), pageSize, auditingEnabled: tenant.auditingEnabled, publisher,
      roles: auth.claims.roles, pageKey, webhooks: tenant.webhooks,
      onWindowRejected: () => tenant.count((counters) => { counters.windowsRejected += 1; }),
    });
    if (routeName === 'audit' && answer.status === 200) {
      tenant.count((counters) => {
        counters.blobsServed += 1;
        counters.recordsServed += answer.records ?? 0;
      });
    }
    if (fault.drop && answer.status === 200 && answer.body !== '') return sendCut(tenant, response, answer);
    return send(tenant, response, answer);
  }

  /**
   * Microsoft Graph: the tenant is the token's (Graph URLs name none); the token must be for Graph. The caller's
   * tenant and roles, or the 401 to answer; counts the request on the tenant's route.
   */
  function graphCaller(request: IncomingMessage, routeName: string, at: Date): { served: ServedTenant; roles: readonly string[] } | HttpAnswer {
    const token = /^Bearer (\S+)$/i.exec(request.headers.authorization ?? '')?.[1];
    const claims = token ? readAccessToken(token, context.signingKey) : undefined;
    const served = claims ? byId.get(claims.tid.toLowerCase()) : undefined;
    const invalid = (message: string) => graphError(401, 'InvalidAuthenticationToken', message, at, { 'WWW-Authenticate': 'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize"' });
    if (!claims || !served) return invalid('Access token validation failure. Invalid audience.');
    if (claims.aud !== `${origin()}/graph`) return invalid('Access token validation failure. Invalid audience.');
    if (claims.exp <= at.getTime() / 1000 || claims.gen < served.identity.generation) return invalid('Lifetime validation failed, the token is expired.');
    served.count((counters) => {
      counters.requests += 1;
      tally(counters.byRoute, routeName);
    });
    return { served, roles: claims.roles };
  }

  function graphRoute(resource: GraphResource, url: URL, request: IncomingMessage): HttpAnswer {
    const at = now();
    const caller = graphCaller(request, `graph:${resource}`, at);
    if ('status' in caller) return caller;
    const { served, roles } = caller;
    const answer = handleGraph(served.serviceAnnouncements, resource, url.searchParams, {
      graphRoot: `${origin()}/graph`, roles, now: at, pageSize: options.graphPageSize ?? 100, prefer: request.headers['prefer'] as string | undefined,
    });
    if (answer.status === 429) served.count((counters) => { counters.throttled += 1; });
    return answer;
  }

  /** `/graph/{v1.0|beta}/security/auditLog/queries[/{id}[/records]]`: the audit search of the token's tenant. */
  function auditSearchRoute(path: RegExpExecArray, method: string, body: string, url: URL, request: IncomingMessage): HttpAnswer {
    const at = now();
    const records = path[3] !== undefined;
    const caller = graphCaller(request, `graph:auditLog/queries${path[2] === undefined ? '' : records ? '/{id}/records' : '/{id}'}`, at);
    if ('status' in caller) return caller;
    let queryId: string | undefined;
    try { queryId = path[2] === undefined ? undefined : decodeURIComponent(path[2]); } catch { queryId = path[2]; }
    return caller.served.auditSearch.handle(
      { method, version: path[1] as 'v1.0' | 'beta', queryId, records, query: url.searchParams, body },
      { graphRoot: `${origin()}/graph`, roles: caller.roles, now: at },
    );
  }

  async function tick(): Promise<void> {
    const at = now();
    const tenants = [...byId.values()];
    if (options.arrivalIntervalMs !== undefined) for (const tenant of tenants) tenant.arrive(at);
    for (const tenant of tenants) await tenant.deliverNotifications(at);
  }

  const server: Server = createServer({ cert: pki.server.certPem, key: pki.server.keyPem }, (request, response) => {
    const url = URL.parse(request.url ?? '/', origin());
    const tenant = url ? tenantOfPath(url.pathname) : undefined;
    count(tenant, (counters) => {
      counters.inFlight += 1;
      counters.peakConcurrency = Math.max(counters.peakConcurrency, counters.inFlight);
    });
    response.on('close', () => count(tenant, (counters) => { counters.inFlight -= 1; }));
    const routed = url ? route(tenant, url, request, response) : Promise.reject(new TypeError(`unreadable request target ${request.url}`));
    routed.catch((error: unknown) => {
      if (!response.headersSent) send(tenant, response, afError(500, 'AF50000', `An internal error occurred. Retry the request. (${String(error)})`));
    });
  });
  server.keepAliveTimeout = 30_000;
  server.on('connection', (socket: Socket) => {
    totals.connections += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  port = (server.address() as AddressInfo).port;
  let ticking = Promise.resolve();
  const timer = options.arrivalIntervalMs !== undefined
    ? setInterval(() => { ticking = ticking.then(tick).catch(() => {}); }, options.arrivalIntervalMs)
    : undefined;
  timer?.unref();

  return {
    ...first.handle,
    port,
    logsIngestion,
    caCertPem: pki.caCertPem,
    authorityHost: origin(),
    apiRoot: origin(),
    graphRoot: `${origin()}/graph`,
    corpus: first.corpus,
    advance: (milliseconds) => { offset += milliseconds; },
    counters: () => structuredClone(totals),
    resetCounters() {
      totals = emptyCounters(totals.inFlight);
      for (const tenant of byId.values()) tenant.handle.resetCounters();
    },
    tick: () => (ticking = ticking.catch(() => {}).then(tick)),
    addTenant: (tenantOptions = {}) => serve({ ...tenantDefaults, ...tenantOptions }).handle,
    removeTenant(tenantId) {
      const tenant = byId.get(tenantId.toLowerCase());
      if (!tenant) return false;
      byId.delete(tenantId.toLowerCase());
      byDomain.delete(tenant.identity.tenantDomain.toLowerCase());
      return true;
    },
    tenants: () => [...byId.values()].map((tenant) => tenant.handle),
    trustIssuer: (issuer, publicKey) => { issuerKeys.set(issuer, [...(issuerKeys.get(issuer) ?? []), publicKey]); },
    async serveManagedIdentity({ tenantId, ...identity } = {}) {
      const served = tenantId === undefined ? first : byId.get(tenantId.toLowerCase());
      if (!served) throw new Error(`the stand-in serves no tenant ${tenantId}`);
      const endpoint = await startManagedIdentityEndpoint({ tenant: () => served.identity, signingKey: context.signingKey, apiRoot: origin, graphRoot: () => `${origin()}/graph`, now }, identity);
      const root = `http://127.0.0.1:${endpoint.port}`;
      const handle: ManagedIdentityEndpoint = { ...endpoint, identityEndpoint: `${root}/msi/token`, imdsHost: root };
      managedIdentities.push(handle);
      return handle;
    },
    stop: () => new Promise<void>((resolve) => {
      for (const identity of managedIdentities.splice(0)) void identity.stop();
      if (timer) clearInterval(timer);
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    }),
  };
}
