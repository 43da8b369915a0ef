/**
 * A local HTTPS stand-in for the Microsoft identity platform and the Office 365 Management Activity API, for
 * tests, the benchmark and the demo. Deterministic from a seed, with faults on demand and counters to read.
 */
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { X509Certificate, createHash } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import { contentTypes, type ContentType } from '../../connector/api/content-types.ts';
import { Corpus } from './corpus.ts';
import { afError, authorize, handleFeed, type SubscriptionRecord } from './activity-feed.ts';
import { instanceDiscovery, openIdConfiguration, tokenRequest, type HttpAnswer, type IdentityState } from './identity.ts';
import { createTestPki, type TestPki } from './tls.ts';

export interface Faults {
  /** Share of API requests answered AF429. */
  throttleRate?: number;
  /** AF429 has been seen as 429 and as 403. */
  throttleStatus?: 429 | 403;
  /** Seconds to put in Retry-After on AF429; none when undefined (the documented case). */
  retryAfterSeconds?: number;
  /** Share of API requests answered 500 AF50000. */
  serverErrorRate?: number;
  /** Share of blob fetches whose connection is cut after part of the body. */
  dropMidBodyRate?: number;
  /** Share of blob fetches answered AF20051, as if the blob expired between listing and fetching. */
  expiredRate?: number;
  /** Milliseconds added before each API answer. */
  latencyMs?: number;
  /** API request numbers (1-based, counted since start or resetCounters) that get a fault whatever the rates. */
  schedule?: ReadonlyArray<{ from: number; to: number; fault: 'throttle' | 'server-error' | 'drop' }>;
}

export interface EmulatorOptions {
  port?: number;
  seed?: number;
  tenantId?: string;
  tenantDomain?: string;
  clientId?: string;
  clientSecret?: string;
  tokenLifetimeSeconds?: number;
  /** Days of history before start-up (at most 7 are listable). */
  days?: number;
  blobIntervalMinutes?: number;
  recordsPerBlob?: number;
  lateBlobRate?: number;
  duplicateRate?: number;
  pageSize?: number;
  /** Requests a minute per PublisherIdentifier; callers that omit it share one bucket of a tenth of it. */
  quotaPerMinute?: number;
  grantedRoles?: string[];
  auditingEnabled?: boolean;
  /** Content types whose subscriptions are already enabled at start. */
  enabledContentTypes?: ContentType[];
  faults?: Faults;
  /** The stand-in's clock; tests move it with `advance`. */
  now?: () => Date;
  pki?: TestPki;
}

export interface EmulatorCounters {
  requests: number;
  apiRequests: number;
  byRoute: Record<string, number>;
  /** Requests per UTC minute, keyed by ISO minute. */
  perMinute: Record<string, number>;
  throttled: number;
  serverErrors: number;
  dropped: number;
  windowsRejected: number;
  tokensIssued: number;
  tokenFailures: number;
  inFlight: number;
  peakConcurrency: number;
  bytesServed: number;
  blobsServed: number;
  missingPublisherIdentifier: number;
}

export interface Emulator {
  readonly port: number;
  readonly caFile: string;
  readonly caCertPem: string;
  readonly tenantId: string;
  readonly tenantDomain: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly authorityHost: string;
  readonly apiRoot: string;
  readonly corpus: Corpus;
  now(): Date;
  advance(milliseconds: number): void;
  /** Every distinct record Id the service can serve now (visible, unexpired blobs). */
  groundTruth(contentType?: ContentType): Set<string>;
  counters(): EmulatorCounters;
  resetCounters(): void;
  setFaults(faults: Faults): void;
  /** Adds a new secret and returns it; the old ones stay valid unless `expireOld`. */
  rotateSecret(options?: { expireOld?: boolean }): string;
  expireSecrets(): void;
  registerCertificate(certPem: string): void;
  revokeTokens(): void;
  setAuditingEnabled(enabled: boolean): void;
  setGrantedRoles(roles: string[]): void;
  /** Posts a notification of every visible blob of a content type to its webhook, with Webhook-AuthID. */
  notifyWebhook(contentType: ContentType): Promise<number>;
  subscriptions(): Map<ContentType, SubscriptionRecord>;
  stop(): Promise<void>;
}

/** A seeded PRNG (mulberry32) so fault sequences repeat for the same seed and request order. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function seededGuid(seed: number, label: string): string {
  const hex = createHash('sha256').update(`${seed}|${label}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

function emptyCounters(): EmulatorCounters {
  return {
    requests: 0, apiRequests: 0, byRoute: {}, perMinute: {}, throttled: 0, serverErrors: 0, dropped: 0, windowsRejected: 0,
    tokensIssued: 0, tokenFailures: 0, inFlight: 0, peakConcurrency: 0, bytesServed: 0, blobsServed: 0, missingPublisherIdentifier: 0,
  };
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

export async function startEmulator(options: EmulatorOptions = {}): Promise<Emulator> {
  const seed = options.seed ?? 1;
  const pki = options.pki ?? (await createTestPki());
  const baseClock = options.now ?? (() => new Date());
  let offset = 0;
  const now = () => new Date(baseClock().getTime() + offset);
  const tenantId = options.tenantId ?? seededGuid(seed, 'tenant');
  const tenantDomain = options.tenantDomain ?? 'contoso.onmicrosoft.com';
  const clientId = options.clientId ?? seededGuid(seed, 'client');
  const clientSecret = options.clientSecret ?? `Q~${createHash('sha256').update(`${seed}|secret`).digest('base64url').slice(0, 38)}`;
  const identity: IdentityState = {
    tenantId, clientId,
    secrets: [{ value: clientSecret, expires: undefined }],
    certificates: [],
    grantedRoles: options.grantedRoles ?? ['ActivityFeed.Read', 'ActivityFeed.ReadDlp', 'ServiceHealth.Read'],
    tokenLifetimeSeconds: options.tokenLifetimeSeconds ?? 3599,
    generation: 0,
  };
  const days = options.days ?? 1;
  const startedAt = now();
  const corpus = new Corpus({
    seed, tenantId, tenantDomain,
    origin: new Date(startedAt.getTime() - days * 24 * 3_600_000),
    blobIntervalMinutes: options.blobIntervalMinutes ?? 30,
    recordsPerBlob: options.recordsPerBlob ?? 20,
    lateBlobRate: options.lateBlobRate ?? 0,
    duplicateRate: options.duplicateRate ?? 0,
  });
  const subscriptions = new Map<ContentType, SubscriptionRecord>();
  for (const contentType of options.enabledContentTypes ?? []) subscriptions.set(contentType, { status: 'enabled', webhook: null });
  let faults: Faults = options.faults ?? {};
  let auditingEnabled = options.auditingEnabled ?? true;
  let counters = emptyCounters();
  const random = prng(seed);
  const quota = options.quotaPerMinute ?? 2000;
  const buckets = new Map<string, { minute: number; used: number }>();
  const pageSize = options.pageSize ?? 100;
  const sockets = new Set<Socket>();
  let port = 0;
  const origin = () => `https://127.0.0.1:${port}`;

  function send(response: ServerResponse, answer: HttpAnswer): void {
    const text = typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body);
    const body = Buffer.from(text, 'utf8');
    counters.bytesServed += body.length;
    response.writeHead(answer.status, {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': String(body.length),
      Date: now().toUTCString(),
      ...answer.headers,
    });
    response.end(body);
  }

  function withinQuota(publisher: string): boolean {
    const minute = Math.floor(now().getTime() / 60_000);
    const bucket = buckets.get(publisher) ?? { minute, used: 0 };
    if (bucket.minute !== minute) { bucket.minute = minute; bucket.used = 0; }
    bucket.used += 1;
    buckets.set(publisher, bucket);
    return bucket.used <= (publisher === '' ? Math.max(1, Math.floor(quota / 10)) : quota);
  }

  function scheduledFault(): 'throttle' | 'server-error' | 'drop' | undefined {
    return faults.schedule?.find((entry) => counters.apiRequests >= entry.from && counters.apiRequests <= entry.to)?.fault;
  }

  function throttle(response: ServerResponse, publisher: string): void {
    counters.throttled += 1;
    send(response, {
      ...afError(faults.throttleStatus ?? 429, 'AF429', `Too many requests. Method=GetBlob, PublisherId=${publisher || '00000000-0000-0000-0000-000000000000'}`),
      ...(faults.retryAfterSeconds !== undefined ? { headers: { 'Retry-After': String(faults.retryAfterSeconds) } } : {}),
    });
  }

  async function validateWebhook(address: string, authId: string | null): Promise<boolean> {
    const code = createHash('sha256').update(`${address}|${Date.now()}`).digest('hex').slice(0, 24);
    const status = await postJson(address, { validationCode: code }, { 'Webhook-ValidationCode': code, ...(authId ? { 'Webhook-AuthID': authId } : {}) });
    return status === 200;
  }

  function postJson(address: string, body: unknown, headers: Record<string, string>): Promise<number> {
    return new Promise((resolve) => {
      const request = httpsRequest(address, { method: 'POST', ca: pki.caCertPem, headers: { 'Content-Type': 'application/json; charset=utf-8', ...headers } }, (response) => {
        response.resume();
        response.on('end', () => resolve(response.statusCode ?? 0));
      });
      request.on('error', () => resolve(0));
      request.end(JSON.stringify(body));
    });
  }

  async function route(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', origin());
    const method = request.method ?? 'GET';
    const body = await readBody(request);
    const minuteKey = now().toISOString().slice(0, 16);
    counters.requests += 1;
    counters.perMinute[minuteKey] = (counters.perMinute[minuteKey] ?? 0) + 1;

    // Not a Microsoft endpoint: lets the benchmark read the stand-in's counters from another process.
    if (url.pathname === '/_emulator/counters') return send(response, { status: 200, body: counters });
    if (url.pathname === '/common/discovery/instance') return send(response, instanceDiscovery(origin()));
    const openId = /^\/([^/]+)\/v2\.0\/\.well-known\/openid-configuration$/.exec(url.pathname);
    if (openId) return send(response, openIdConfiguration(origin(), openId[1]!));
    const token = /^\/([^/]+)\/oauth2\/v2\.0\/token$/.exec(url.pathname);
    if (token && method === 'POST') {
      counters.byRoute['token'] = (counters.byRoute['token'] ?? 0) + 1;
      const answer = tokenRequest(token[1]!, new URLSearchParams(body), { state: identity, apiRoot: origin(), authorityHost: origin(), now: now() });
      if (answer.status === 200) counters.tokensIssued += 1; else counters.tokenFailures += 1;
      return send(response, answer);
    }

    const feed = /^\/api\/v1\.0\/([^/]+)\/activity\/feed\/(.+)$/.exec(url.pathname);
    if (!feed) return send(response, { status: 404, body: { error: { code: 'NotFound', message: `No route for ${url.pathname}` } } });
    const [, urlTenant, path] = feed as unknown as [string, string, string];
    const routeName = path.startsWith('audit/') ? 'audit' : path;
    counters.apiRequests += 1;
    counters.byRoute[routeName] = (counters.byRoute[routeName] ?? 0) + 1;
    const publisher = url.searchParams.get('PublisherIdentifier') ?? '';
    if (publisher === '') counters.missingPublisherIdentifier += 1;

    if (faults.latencyMs) await new Promise((resolve) => setTimeout(resolve, faults.latencyMs));
    const neededRole = url.searchParams.get('contentType') === 'DLP.All' ? 'ActivityFeed.ReadDlp' : 'ActivityFeed.Read';
    const refused = authorize(request.headers.authorization, urlTenant, {
      tenantId, clientId, apiRoot: origin(), corpus, subscriptions, now: now(), pageSize, auditingEnabled,
      tokenGeneration: identity.generation, onWindowRejected: () => {}, validateWebhook,
    }, neededRole);
    if (refused) return send(response, refused);
    if (urlTenant !== tenantId) return send(response, afError(400, 'AF20010', `The tenant ID passed in the URL (${urlTenant}) does not match the tenant ID passed in the access token (${tenantId}).`));

    const scheduled = scheduledFault();
    if (scheduled === 'throttle' || !withinQuota(publisher) || random() < (faults.throttleRate ?? 0)) return throttle(response, publisher);
    if (scheduled === 'server-error' || random() < (faults.serverErrorRate ?? 0)) {
      counters.serverErrors += 1;
      return send(response, afError(500, 'AF50000', 'An internal server error occurred. Retry the request.'));
    }

    if (routeName === 'audit' && random() < (faults.expiredRate ?? 0)) {
      const contentId = decodeURIComponent(path.slice('audit/'.length));
      return send(response, afError(400, 'AF20051', `Content requested with the key ${contentId} has already expired. Content older than 7 days cannot be retrieved.`));
    }
    const answer = await handleFeed(method, path, url.searchParams, body, {
      tenantId, clientId, apiRoot: origin(), corpus, subscriptions, now: now(), pageSize, auditingEnabled,
      tokenGeneration: identity.generation, onWindowRejected: () => { counters.windowsRejected += 1; }, validateWebhook,
    });
    if (routeName === 'audit' && answer.status === 200) {
      counters.blobsServed += 1;
      if (scheduled === 'drop' || random() < (faults.dropMidBodyRate ?? 0)) {
        counters.dropped += 1;
        const text = Buffer.from(JSON.stringify(answer.body));
        response.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': String(text.length), Date: now().toUTCString() });
        response.write(text.subarray(0, Math.floor(text.length / 2)));
        response.socket?.destroy();
        return;
      }
    }
    return send(response, answer);
  }

  const server: Server = createServer({ cert: pki.server.certPem, key: pki.server.keyPem }, (request, response) => {
    counters.inFlight += 1;
    counters.peakConcurrency = Math.max(counters.peakConcurrency, counters.inFlight);
    response.on('close', () => { counters.inFlight -= 1; });
    route(request, response).catch((error: unknown) => {
      if (!response.headersSent) send(response, afError(500, 'AF50000', `An internal server error occurred. Retry the request. (${String(error)})`));
    });
  });
  server.keepAliveTimeout = 30_000;
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  port = (server.address() as AddressInfo).port;

  return {
    port,
    caFile: pki.caFile,
    caCertPem: pki.caCertPem,
    tenantId, tenantDomain, clientId, clientSecret,
    authorityHost: origin(),
    apiRoot: origin(),
    corpus,
    now,
    advance: (milliseconds) => { offset += milliseconds; },
    groundTruth(contentType) {
      const ids = new Set<string>();
      const at = now();
      const from = new Date(at.getTime() - 7 * 24 * 3_600_000);
      for (const type of contentType ? [contentType] : contentTypes) {
        const { first, last } = corpus.indexRange(from, at);
        for (let index = first; index <= last; index += 1) {
          const blob = corpus.blob(type, index);
          if (blob.contentCreated < from || blob.contentCreated >= at || blob.visibleAt > at || blob.contentExpiration <= at) continue;
          for (const record of corpus.records(blob)) ids.add(record.Id);
        }
      }
      return ids;
    },
    counters: () => structuredClone(counters),
    resetCounters: () => { counters = { ...emptyCounters(), inFlight: counters.inFlight }; },
    setFaults: (next) => { faults = next; },
    rotateSecret(rotation = {}) {
      const value = `Q~${createHash('sha256').update(`${seed}|secret|${identity.secrets.length}`).digest('base64url').slice(0, 38)}`;
      if (rotation.expireOld) for (const secret of identity.secrets) secret.expires = now();
      identity.secrets.push({ value, expires: undefined });
      return value;
    },
    expireSecrets: () => { for (const secret of identity.secrets) secret.expires = now(); },
    registerCertificate: (certPem) => { identity.certificates.push(new X509Certificate(certPem)); },
    revokeTokens: () => { identity.generation += 1; },
    setAuditingEnabled: (enabled) => { auditingEnabled = enabled; },
    setGrantedRoles: (roles) => { identity.grantedRoles = roles; },
    async notifyWebhook(contentType) {
      const subscription = subscriptions.get(contentType);
      if (!subscription?.webhook) return 0;
      const at = now();
      const { first, last } = corpus.indexRange(new Date(at.getTime() - 24 * 3_600_000), at);
      const notifications = [];
      for (let index = first; index <= last; index += 1) {
        const blob = corpus.blob(contentType, index);
        if (blob.visibleAt > at || blob.contentCreated >= at) continue;
        notifications.push({
          tenantId, clientId, contentType, contentId: blob.contentId,
          contentUri: `${origin()}/api/v1.0/${tenantId}/activity/feed/audit/${blob.contentId}`,
          contentCreated: blob.contentCreated.toISOString(), contentExpiration: blob.contentExpiration.toISOString(),
        });
      }
      await postJson(subscription.webhook.address, notifications, subscription.webhook.authId ? { 'Webhook-AuthID': subscription.webhook.authId } : {});
      return notifications.length;
    },
    subscriptions: () => subscriptions,
    stop: () => new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    }),
  };
}
