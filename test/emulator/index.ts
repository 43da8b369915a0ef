/**
 * A local HTTPS stand-in for the Microsoft identity platform and the Office 365 Management Activity API, for
 * tests, the benchmark and the demo. Deterministic from a seed, faithful to the documented contract (never
 * friendlier), with faults on demand, counters to read, and the exact ground truth of what it can serve.
 */
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { X509Certificate, createHash, randomBytes } from 'node:crypto';
import { contentTypes, type ContentType } from '../../connector/api/content-types.ts';
import { Corpus, fraction, type AddContentOptions, type BlobDescriptor } from './corpus.ts';
import { afError, authenticate, contentEntry, handleFeed, routeOf, servable, type SubscriptionRecord } from './activity-feed.ts';
import { aadError, instanceDiscovery, openIdConfiguration, tokenRequest, type HttpAnswer, type IdentityState } from './identity.ts';
import { FaultPlan, type Faults } from './faults.ts';
import { WebhookPoster, type ContentEntry } from './webhooks.ts';
import { createTestPki, type TestPki } from './tls.ts';

export type { Faults, FaultRule, FaultKind, FeedRoute } from './faults.ts';
export { parseFaultRule } from './faults.ts';
export type { AddContentOptions, BlobDescriptor, AuditRecordObject } from './corpus.ts';

const minute = 60_000;
const day = 24 * 60 * minute;

export interface EmulatorOptions {
  /** Port on 127.0.0.1; 0 (default) takes a free one. */
  port?: number;
  /** Seed of ids, secret, corpus and fault draws; default 1. */
  seed?: number;
  tenantId?: string;
  tenantDomain?: string;
  clientId?: string;
  clientSecret?: string;
  /** Lifetime of issued access tokens; default 3599 s. */
  tokenLifetimeSeconds?: number;
  /** Days of history before start-up (at most 7 are listable); default 1. */
  days?: number;
  /** Minutes between two blobs of one content type (fractions allowed); default 30. */
  blobIntervalMinutes?: number;
  /** Records in each blob; default 20. */
  recordsPerBlob?: number;
  /** Share of blobs listed 20 to 90 minutes after their contentCreated; default 0. */
  lateBlobRate?: number;
  /** How late a late blob may become listable, in minutes; default 90. */
  lateMaxMinutes?: number;
  /** How far back a repeated record's first blob may be, in minutes; default: the previous blob. */
  duplicateMaxAgeMinutes?: number;
  /** Share of blobs that repeat a record of the previous blob; default 0. */
  duplicateRate?: number;
  /** Content entries per listing page; default 100. */
  pageSize?: number;
  /** Requests a minute per PublisherIdentifier; default 2000. */
  quotaPerMinute?: number;
  /** Requests a minute shared by every caller that omits PublisherIdentifier; default a tenth of quotaPerMinute. */
  anonymousQuotaPerMinute?: number;
  /** Roles put in issued tokens; default ActivityFeed.Read, ActivityFeed.ReadDlp, ServiceHealth.Read. */
  grantedRoles?: string[];
  auditingEnabled?: boolean;
  /** Content types whose subscriptions are already enabled at start. */
  enabledContentTypes?: ContentType[];
  faults?: Faults;
  /** Milliseconds between ticks of the arrival generator (new blobs, webhook notifications); none by default. */
  arrivalIntervalMs?: number;
  /** Share of generated blobs that arrive late (contentCreated 20-90 minutes before they are listed); default 0.2. */
  arrivalLateRate?: number;
  /** The stand-in's clock; tests move it with `advance` or by changing what it returns. */
  now?: () => Date;
  /** Elapsed real milliseconds, on which quotas refill (default performance.now); tests may drive it by hand. */
  elapsedMs?: () => number;
  pki?: TestPki;
}

export interface EmulatorCounters {
  requests: number;
  apiRequests: number;
  byRoute: Record<string, number>;
  byStatus: Record<string, number>;
  /** Requests per UTC minute of the stand-in's clock, keyed by ISO minute. */
  perMinute: Record<string, number>;
  throttled: number;
  serverErrors: number;
  dropped: number;
  expiredServed: number;
  windowsRejected: number;
  tokensIssued: number;
  tokenFailures: number;
  unauthorized: number;
  inFlight: number;
  peakConcurrency: number;
  /** TCP connections accepted (through a proxy: one per tunnel). */
  connections: number;
  bytesServed: number;
  blobsServed: number;
  recordsServed: number;
  missingPublisherIdentifier: number;
  webhookValidations: number;
  notificationsSent: number;
}

export interface Emulator {
  readonly port: number;
  readonly caFile: string;
  readonly caCertPem: string;
  readonly tenantId: string;
  readonly tenantDomain: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** `https://127.0.0.1:<port>`: the authority is `${authorityHost}/${tenantId}`. */
  readonly authorityHost: string;
  /** `https://127.0.0.1:<port>`: the token scope is `${apiRoot}/.default`. */
  readonly apiRoot: string;
  readonly corpus: Corpus;
  now(): Date;
  advance(milliseconds: number): void;
  /** Every distinct record Id a subscriber can fetch now, per content type or for all (duplicates folded). */
  groundTruth(contentType?: ContentType): Set<string>;
  /** The same ids lazily, duplicates included (as served): for corpora too big for one Set. */
  groundTruthIds(contentType?: ContentType): Generator<string>;
  /**
   * The exact bytes of every distinct record a subscriber can fetch now, by Id: what a connector that passes
   * records through must deliver. A repeated record is the same bytes in every blob that carries it.
   */
  groundTruthBytes(contentType?: ContentType): Map<string, Buffer>;
  /** The same lazily, duplicates included (as served): for corpora too big for one Map. */
  groundTruthRecords(contentType?: ContentType): Generator<{ id: string; bytes: Buffer }>;
  /** How many records (duplicates included) and blobs a full crawl would fetch now. */
  groundTruthCount(contentType?: ContentType): { records: number; blobs: number };
  counters(): EmulatorCounters;
  resetCounters(): void;
  setFaults(faults: Faults): void;
  faults(): Faults;
  /** Adds a new secret and returns it; the old ones stay valid unless `expireOld` (or `removeOld`). */
  rotateSecret(options?: { expireOld?: boolean; removeOld?: boolean }): string;
  expireSecrets(): void;
  registerCertificate(certPem: string): void;
  revokeTokens(): void;
  setAuditingEnabled(enabled: boolean): void;
  setGrantedRoles(roles: string[]): void;
  setTokenLifetime(seconds: number): void;
  /** Makes a blob arrive now (or late, with an earlier contentCreated); its records count in the ground truth. */
  addContent(contentType: ContentType, options?: AddContentOptions): BlobDescriptor;
  /** One step of the arrival generator: new blobs if configured, then webhook notifications of what became visible. */
  tick(): Promise<void>;
  /** Posts a notification of every servable blob of the last 24 h of a content type to its webhook. */
  notifyWebhook(contentType: ContentType): Promise<number>;
  subscriptions(): Map<ContentType, SubscriptionRecord>;
  stop(): Promise<void>;
}

function seededGuid(seed: number, label: string): string {
  const hex = createHash('sha256').update(`${seed}|${label}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** Client secrets look like Entra's: 40 characters with a "~" in the fourth place. */
function seededSecret(seed: number, generation: number): string {
  const text = createHash('sha256').update(`${seed}|secret|${generation}`).digest('base64url').replace(/[-_]/g, 'x');
  return `${text.slice(0, 3)}8Q~${text.slice(3, 37)}`;
}

function emptyCounters(inFlight = 0): EmulatorCounters {
  return {
    requests: 0, apiRequests: 0, byRoute: {}, byStatus: {}, perMinute: {}, throttled: 0, serverErrors: 0, dropped: 0, expiredServed: 0,
    windowsRejected: 0, tokensIssued: 0, tokenFailures: 0, unauthorized: 0, inFlight, peakConcurrency: inFlight, bytesServed: 0,
    blobsServed: 0, recordsServed: 0, missingPublisherIdentifier: 0, webhookValidations: 0, notificationsSent: 0, connections: 0,
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
  const clientSecret = options.clientSecret ?? seededSecret(seed, 0);
  const identity: IdentityState = {
    tenantId, tenantDomain, clientId,
    secrets: [{ value: clientSecret, expires: undefined }],
    certificates: [],
    grantedRoles: options.grantedRoles ?? ['ActivityFeed.Read', 'ActivityFeed.ReadDlp', 'ServiceHealth.Read'],
    tokenLifetimeSeconds: options.tokenLifetimeSeconds ?? 3599,
    generation: 0,
    signingKey: randomBytes(32).toString('hex'),
  };
  let secretGeneration = 0;
  const pageKey = randomBytes(32).toString('hex');
  const startedAt = now();
  const corpus = new Corpus({
    seed, tenantId, tenantDomain,
    origin: new Date(startedAt.getTime() - (options.days ?? 1) * day),
    blobIntervalMinutes: options.blobIntervalMinutes ?? 30,
    recordsPerBlob: options.recordsPerBlob ?? 20,
    lateBlobRate: options.lateBlobRate ?? 0,
    duplicateRate: options.duplicateRate ?? 0,
    ...(options.lateMaxMinutes !== undefined ? { lateMaxMinutes: options.lateMaxMinutes } : {}),
    ...(options.duplicateMaxAgeMinutes !== undefined ? { duplicateMaxAgeMinutes: options.duplicateMaxAgeMinutes } : {}),
  });
  const subscriptions = new Map<ContentType, SubscriptionRecord>();
  for (const contentType of options.enabledContentTypes ?? []) subscriptions.set(contentType, { status: 'enabled', webhook: null, gaps: [] });
  const faultPlan = new FaultPlan(seed, options.faults ?? {});
  const webhooks = new WebhookPoster(pki.caCertPem, () => { counters.webhookValidations += 1; });
  let auditingEnabled = options.auditingEnabled ?? true;
  let counters = emptyCounters();
  const quota = options.quotaPerMinute ?? 2000;
  const anonymousQuota = options.anonymousQuotaPerMinute ?? Math.max(1, Math.floor(quota / 10));
  const buckets = new Map<string, { minute: number; used: number }>();
  const pageSize = options.pageSize ?? 100;
  const sockets = new Set<Socket>();
  const notifiedUpTo = new Map<ContentType, Date>(contentTypes.map((type) => [type, startedAt]));
  const notified = new Map<string, number>();
  const unconfirmed = new Map<ContentType, ContentEntry[]>();
  let generated = 0;
  let port = 0;
  const origin = () => `https://127.0.0.1:${port}`;

  function count(record: Record<string, number>, key: string): void {
    record[key] = (record[key] ?? 0) + 1;
  }

  function bodyOf(answer: HttpAnswer): Buffer {
    if (Buffer.isBuffer(answer.body)) return answer.body;
    return Buffer.from(typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body), 'utf8');
  }

  function send(response: ServerResponse, answer: HttpAnswer): void {
    const body = bodyOf(answer);
    counters.bytesServed += body.length;
    count(counters.byStatus, String(answer.status));
    if (answer.status === 401) counters.unauthorized += 1;
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
  function sendCut(response: ServerResponse, answer: HttpAnswer): void {
    const body = bodyOf(answer);
    const part = body.subarray(0, Math.max(1, Math.floor(body.length / 2)));
    counters.dropped += 1;
    counters.bytesServed += part.length;
    count(counters.byStatus, String(answer.status));
    response.writeHead(answer.status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': String(body.length), Date: now().toUTCString() });
    response.write(part, () => response.socket?.destroy());
  }

  /**
   * Quotas run on elapsed real time (plus `advance`), not on the content clock: a test that freezes the
   * content clock must still see the budget refill every minute, as it does at Microsoft.
   */
  const elapsedMs = options.elapsedMs ?? (() => performance.now());
  const quotaClock = () => elapsedMs() + offset;
  function withinQuota(publisher: string): boolean {
    const currentMinute = Math.floor(quotaClock() / minute);
    const bucket = buckets.get(publisher) ?? { minute: currentMinute, used: 0 };
    if (bucket.minute !== currentMinute) { bucket.minute = currentMinute; bucket.used = 0; }
    bucket.used += 1;
    buckets.set(publisher, bucket);
    return bucket.used <= (publisher === '' ? anonymousQuota : quota);
  }

  function throttled(method: string, publisher: string): HttpAnswer {
    counters.throttled += 1;
    const faults = faultPlan.faults;
    return {
      ...afError(faults.throttleStatus ?? 429, 'AF429', `Too many requests. Method=${method}, PublisherId=${publisher || '00000000-0000-0000-0000-000000000000'}`),
      ...(faults.retryAfterSeconds !== undefined ? { headers: { 'Retry-After': String(faults.retryAfterSeconds) } } : {}),
    };
  }

  function serverError(): HttpAnswer {
    counters.serverErrors += 1;
    const code = faultPlan.faults.serverErrorCode ?? 'AF50000';
    if (code === '503') return { status: 503, body: 'Service Unavailable', headers: { 'Content-Type': 'text/html' } };
    return afError(500, code, 'An internal error occurred. Retry the request.');
  }

  async function identityRoute(method: string, url: URL, body: string): Promise<HttpAnswer | undefined> {
    if (url.pathname === '/common/discovery/instance') return instanceDiscovery(origin());
    const openId = /^\/([^/]+)\/v2\.0\/\.well-known\/openid-configuration$/.exec(url.pathname);
    if (openId) return openIdConfiguration(origin(), decodeURIComponent(openId[1]!), identity, now());
    const token = /^\/([^/]+)\/oauth2\/v2\.0\/token$/.exec(url.pathname);
    if (!token) return undefined;
    count(counters.byRoute, 'token');
    const answer = method === 'POST'
      ? tokenRequest(decodeURIComponent(token[1]!), new URLSearchParams(body), { state: identity, apiRoot: origin(), authorityHost: origin(), now: now() })
      : aadError(now(), 400, 'invalid_request', 900561, 'The endpoint only accepts POST, OPTIONS requests. Received a GET request.');
    if (answer.status === 200) counters.tokensIssued += 1; else counters.tokenFailures += 1;
    return answer;
  }

  async function route(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? '/', origin());
    const method = request.method ?? 'GET';
    const body = await readBody(request);
    counters.requests += 1;
    count(counters.perMinute, now().toISOString().slice(0, 16));

    // Not a Microsoft endpoint: lets the benchmark read the stand-in's counters from another process.
    if (url.pathname === '/_emulator/counters') return send(response, { status: 200, body: counters });
    const identityAnswer = await identityRoute(method, url, body);
    if (identityAnswer) return send(response, identityAnswer);

    const feed = /^\/api\/v1\.0\/([^/]+)\/activity\/feed\/(.+)$/.exec(url.pathname);
    if (!feed) return send(response, { status: 404, body: { Message: `No HTTP resource was found that matches the request URI '${url.href}'.` } });
    const urlTenant = decodeURIComponent(feed[1]!);
    const path = feed[2]!;
    const routeName = routeOf(path);
    counters.apiRequests += 1;
    count(counters.byRoute, routeName);
    const publisher = url.searchParams.get('PublisherIdentifier') ?? '';
    if (publisher === '') counters.missingPublisherIdentifier += 1;

    const fault = faultPlan.decide(routeName);
    if (fault.latencyMs > 0) await new Promise((resolve) => setTimeout(resolve, fault.latencyMs));
    if (fault.revoke) identity.generation += 1;
    const auth = authenticate(request.headers.authorization, urlTenant, { signingKey: identity.signingKey, apiRoot: origin(), now: now(), generation: identity.generation });
    if ('refusal' in auth) return send(response, auth.refusal);
    if (!withinQuota(publisher) || fault.throttle) return send(response, throttled(method, publisher));
    if (fault.serverError) return send(response, serverError());

    if (routeName === 'audit' && fault.expired) {
      counters.expiredServed += 1;
      const contentId = decodeURIComponent(path.slice('audit/'.length));
      return send(response, afError(400, 'AF20051', `Content requested with the key ${contentId} has already expired. Content older than 7 days cannot be retrieved.`));
    }
    const answer = await handleFeed(method, path, url.searchParams, body, { acceptLanguage: request.headers['accept-language'] }, {
      tenantId, clientId, apiRoot: origin(), corpus, subscriptions, now: now(), pageSize, auditingEnabled, publisher,
      roles: auth.claims.roles, pageKey, webhooks,
      onWindowRejected: () => { counters.windowsRejected += 1; },
    });
    if (routeName === 'audit' && answer.status === 200) {
      counters.blobsServed += 1;
      counters.recordsServed += answer.records ?? 0;
    }
    if (fault.drop && answer.status === 200 && answer.body !== '') return sendCut(response, answer);
    return send(response, answer);
  }

  function truthBlobs(contentType: ContentType | undefined): BlobDescriptor[] {
    const at = now();
    return (contentType ? [contentType] : [...contentTypes]).flatMap((type) => corpus
      .blobsCreatedIn(type, new Date(at.getTime() - 7 * day), new Date(at.getTime() + 1))
      .filter((blob) => servable(blob, subscriptions.get(type), at)));
  }

  async function deliverNotifications(): Promise<void> {
    const at = now();
    for (const [contentType, subscription] of subscriptions) {
      const webhook = subscription.webhook;
      const since = notifiedUpTo.get(contentType) ?? startedAt;
      notifiedUpTo.set(contentType, at);
      if (subscription.status !== 'enabled' || !webhook || webhook.status !== 'enabled') continue;
      if (webhook.expiration !== null && new Date(webhook.expiration) <= at) { webhook.status = 'expired'; continue; }
      // A blob is listed at most 90 minutes after its contentCreated, so that bounds the search.
      const fresh = corpus.blobsCreatedIn(contentType, new Date(since.getTime() - 91 * minute), new Date(at.getTime() + 1))
        .filter((blob) => blob.visibleAt >= since && blob.visibleAt <= at && !notified.has(blob.contentId) && servable(blob, subscription, at));
      for (const blob of fresh) notified.set(blob.contentId, blob.visibleAt.getTime());
      for (const [contentId, visibleAt] of notified) if (visibleAt < at.getTime() - day) notified.delete(contentId);
      // A notification not answered 200 is retried on the next tick, as the service retries failed ones.
      const entries = [...(unconfirmed.get(contentType) ?? []), ...fresh.map((blob) => contentEntry(origin(), tenantId, blob))];
      if (entries.length === 0) continue;
      const delivered = await webhooks.notify(webhook, entries, { tenantId, clientId }, at);
      unconfirmed.set(contentType, delivered ? [] : entries);
      counters.notificationsSent += 1;
    }
  }

  async function tick(): Promise<void> {
    if (options.arrivalIntervalMs !== undefined) {
      const at = now();
      for (const contentType of contentTypes) {
        const late = fraction(seed, contentType, 'arrival-late', generated) < (options.arrivalLateRate ?? 0.2);
        const delay = (20 + Math.floor(fraction(seed, contentType, 'arrival-delay', generated) * 70)) * minute;
        corpus.add(contentType, at, late ? { contentCreated: new Date(at.getTime() - delay), visibleAt: at } : {});
      }
      generated += 1;
    }
    await deliverNotifications();
  }

  const server: Server = createServer({ cert: pki.server.certPem, key: pki.server.keyPem }, (request, response) => {
    counters.inFlight += 1;
    counters.peakConcurrency = Math.max(counters.peakConcurrency, counters.inFlight);
    response.on('close', () => { counters.inFlight -= 1; });
    route(request, response).catch((error: unknown) => {
      if (!response.headersSent) send(response, afError(500, 'AF50000', `An internal error occurred. Retry the request. (${String(error)})`));
    });
  });
  server.keepAliveTimeout = 30_000;
  server.on('connection', (socket: Socket) => {
    counters.connections += 1;
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
      return new Set(corpus.recordIds(truthBlobs(contentType)));
    },
    groundTruthIds(contentType) {
      return corpus.recordIds(truthBlobs(contentType));
    },
    groundTruthBytes(contentType) {
      const truth = new Map<string, Buffer>();
      for (const { id, text } of corpus.recordTextsIn(truthBlobs(contentType))) {
        if (!truth.has(id)) truth.set(id, Buffer.from(text, 'utf8'));
      }
      return truth;
    },
    *groundTruthRecords(contentType) {
      for (const { id, text } of corpus.recordTextsIn(truthBlobs(contentType))) yield { id, bytes: Buffer.from(text, 'utf8') };
    },
    groundTruthCount(contentType) {
      const blobs = truthBlobs(contentType);
      let records = 0;
      for (const _id of corpus.recordIds(blobs)) records += 1;
      return { records, blobs: blobs.length };
    },
    counters: () => structuredClone(counters),
    resetCounters: () => { counters = emptyCounters(counters.inFlight); faultPlan.restartNumbering(); },
    setFaults: (next) => { faultPlan.set(next); },
    faults: () => ({ ...faultPlan.faults }),
    rotateSecret(rotation = {}) {
      secretGeneration += 1;
      const value = seededSecret(seed, secretGeneration);
      if (rotation.removeOld) identity.secrets.splice(0, identity.secrets.length);
      else if (rotation.expireOld) for (const secret of identity.secrets) secret.expires = now();
      identity.secrets.push({ value, expires: undefined });
      return value;
    },
    expireSecrets: () => { for (const secret of identity.secrets) secret.expires = now(); },
    registerCertificate: (certPem) => { identity.certificates.push(new X509Certificate(certPem)); },
    revokeTokens: () => { identity.generation += 1; },
    setAuditingEnabled: (enabled) => { auditingEnabled = enabled; },
    setGrantedRoles: (roles) => { identity.grantedRoles = [...roles]; },
    setTokenLifetime: (seconds) => { identity.tokenLifetimeSeconds = seconds; },
    addContent: (contentType, addOptions) => corpus.add(contentType, now(), addOptions),
    tick: () => (ticking = ticking.catch(() => {}).then(tick)),
    async notifyWebhook(contentType) {
      const subscription = subscriptions.get(contentType);
      if (!subscription?.webhook) return 0;
      const at = now();
      const entries = corpus.blobsCreatedIn(contentType, new Date(at.getTime() - day), at)
        .filter((blob) => servable(blob, subscription, at))
        .map((blob) => contentEntry(origin(), tenantId, blob));
      await webhooks.notify(subscription.webhook, entries, { tenantId, clientId }, at);
      counters.notificationsSent += 1;
      return entries.length;
    },
    subscriptions: () => subscriptions,
    stop: () => new Promise<void>((resolve) => {
      if (timer) clearInterval(timer);
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    }),
  };
}
