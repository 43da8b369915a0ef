/**
 * One tenant the stand-in serves: its directory entry (ids, secrets, roles, token generation), its audit log,
 * subscriptions, quota per PublisherIdentifier, faults, webhooks and counters. Many tenants share one server, as
 * at Microsoft (one authority host, one API root, the tenant named in the path); a quiet tenant costs a few small
 * objects, and its corpus is only made when something asks for its content.
 */
import { X509Certificate, createHash } from 'node:crypto';
import { chmod, writeFile } from 'node:fs/promises';
import { contentTypes, type ContentType } from '../../contract/content-types.ts';
import type { StackOutputs } from '../../contract/stack-outputs.ts';
import { Corpus, fraction, type AddContentOptions, type BlobDescriptor, type CorpusOptions } from './corpus.ts';
import { contentEntry, servable, type SubscriptionRecord } from './activity-feed.ts';
import type { IdentityState } from './identity.ts';
import { FaultPlan, type Faults } from './faults.ts';
import { WebhookPoster, type ContentEntry } from './webhooks.ts';
import { connectorOutputs } from './connector-config.ts';
import { ServiceAnnouncements } from './service-announcements.ts';
import { AuditSearch, emptyAuditSearchCounters, type AuditSearchCounters, type AuditSearchOptions } from './audit-search.ts';
import { graphAuditSearchPermission } from '../../contract/clouds.ts';

const minute = 60_000;
const day = 24 * 60 * minute;

/** What one tenant is made of; every field has a default (see `startEmulator` and `addTenant`). */
export interface EmulatorTenantOptions {
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
  /** A tenant with no content: no blobs on the grid and none from the arrival generator, only what addContent adds. */
  quiet?: boolean;
  /** Requests a minute per PublisherIdentifier; default 2000. */
  quotaPerMinute?: number;
  /** Requests a minute shared by every caller that omits PublisherIdentifier; default a tenth of quotaPerMinute. */
  anonymousQuotaPerMinute?: number;
  /** Roles put in issued tokens; default ActivityFeed.Read, ActivityFeed.ReadDlp, ServiceHealth.Read. */
  grantedRoles?: string[];
  /** Microsoft Graph roles put in tokens for Graph; default ServiceHealth.Read.All, ServiceMessage.Read.All, AuditLogsQuery.Read.All. */
  graphRoles?: string[];
  auditingEnabled?: boolean;
  /** Content types whose subscriptions are already enabled at start. */
  enabledContentTypes?: ContentType[];
  faults?: Faults;
  /** Share of generated blobs that arrive late (contentCreated 20-90 minutes before they are listed); default 0.2. */
  arrivalLateRate?: number;
  /** The audit search's knobs (polls until done, page size, record limit, concurrent queries, retention): audit-search.ts. */
  auditSearch?: AuditSearchOptions;
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
  /** TCP connections accepted (through a proxy: one per tunnel); emulator-wide only, a tenant's stays 0. */
  connections: number;
  bytesServed: number;
  blobsServed: number;
  recordsServed: number;
  missingPublisherIdentifier: number;
  webhookValidations: number;
  notificationsSent: number;
  /** Microsoft Graph's audit search (queries created, polls, pages and records served, 429s). */
  auditSearch: AuditSearchCounters;
}

export function emptyCounters(inFlight = 0): EmulatorCounters {
  return {
    requests: 0, apiRequests: 0, byRoute: {}, byStatus: {}, perMinute: {}, throttled: 0, serverErrors: 0, dropped: 0, expiredServed: 0,
    windowsRejected: 0, tokensIssued: 0, tokenFailures: 0, unauthorized: 0, inFlight, peakConcurrency: inFlight, bytesServed: 0,
    blobsServed: 0, recordsServed: 0, missingPublisherIdentifier: 0, webhookValidations: 0, notificationsSent: 0, connections: 0,
    auditSearch: emptyAuditSearchCounters(),
  };
}

/** What a connector sees of one tenant, and what a test can do to it. */
export interface EmulatorTenant {
  /** Position in the order tenants were created (0 for the first); never reused after a removal. */
  readonly index: number;
  readonly tenantId: string;
  readonly tenantDomain: string;
  readonly clientId: string;
  /** The secret the tenant started with (rotateSecret returns the new ones). */
  readonly clientSecret: string;
  readonly caFile: string;
  /** `https://127.0.0.1:<port>`, the same for every tenant: the authority is `${authorityHost}/${tenantId}`. */
  readonly authorityHost: string;
  /** `https://127.0.0.1:<port>`, the same for every tenant: the token scope is `${apiRoot}/.default`. */
  readonly apiRoot: string;
  /** `https://127.0.0.1:<port>/graph`, the stand-in's Microsoft Graph: the token scope is `${graphRoot}/.default`. */
  readonly graphRoot: string;
  /** Microsoft Graph's service announcements of this tenant: issues, messages, overviews, every version served. */
  readonly serviceAnnouncements: ServiceAnnouncements;
  /** The Graph application permissions its tokens for Graph carry from now on. */
  setGraphRoles(roles: string[]): void;
  /** The Graph application permissions its tokens for Graph carry now. */
  graphRoles(): string[];
  /**
   * Microsoft Graph's audit log query API of this tenant (history beyond the API's 7 days): `configure`,
   * `throttleNext`, `failNext`, `queries()`, and the ground truth `truth(contentType, { start, end })`.
   */
  readonly auditSearch: AuditSearch;
  /** The next `count` Graph requests answer 429 with `Retry-After: retryAfterSeconds`. */
  throttleGraph(count: number, retryAfterSeconds: number): void;
  /** Made on first use. */
  readonly corpus: Corpus;
  now(): Date;
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
  /** This tenant's requests only (token requests named by its id or domain, API requests on its URLs). */
  counters(): EmulatorCounters;
  resetCounters(): void;
  setFaults(faults: Faults): void;
  faults(): Faults;
  /** Adds a new secret and returns it; the old ones stay valid unless `expireOld` (or `removeOld`). */
  rotateSecret(options?: { expireOld?: boolean; removeOld?: boolean }): string;
  expireSecrets(): void;
  registerCertificate(certPem: string): void;
  /** A federated identity credential on the app: a token of `issuer` for `subject` (audience api://AzureADTokenExchange unless given) signs it in. */
  addFederatedCredential(credential: { issuer: string; subject: string; audiences?: string[] }): void;
  revokeTokens(): void;
  setAuditingEnabled(enabled: boolean): void;
  setGrantedRoles(roles: string[]): void;
  setTokenLifetime(seconds: number): void;
  /** Makes a blob arrive now (or late, with an earlier contentCreated); its records count in the ground truth. */
  addContent(contentType: ContentType, options?: AddContentOptions): BlobDescriptor;
  /** Posts a notification of every servable blob of the last 24 h of a content type to its webhook. */
  notifyWebhook(contentType: ContentType): Promise<number>;
  subscriptions(): Map<ContentType, SubscriptionRecord>;
  /** The connector configuration, as `pulumi stack output --json --show-secrets` prints it for this tenant. */
  stackOutputs(): StackOutputs;
  /** Writes `stackOutputs()` as JSON to a file only its owner may read (mode 0600). */
  writeStackOutputs(file: string): Promise<void>;
}

export function seededGuid(seed: number, label: string): string {
  const hex = createHash('sha256').update(`${seed}|${label}`).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** Client secrets look like Entra's: 40 characters with a "~" in the fourth place. */
function seededSecret(label: string, generation: number): string {
  const text = createHash('sha256').update(`${label}|secret|${generation}`).digest('base64url').replace(/[-_]/g, 'x');
  return `${text.slice(0, 3)}8Q~${text.slice(3, 37)}`;
}

/**
 * The first tenant keeps the ids, secret and corpus a single-tenant stand-in of the same seed always had; every
 * other tenant's are drawn from (seed, index), so two tenants with the same corpus options still differ in every
 * record Id and contentId.
 */
function derivation(seed: number, index: number): { seed: number; label: (name: string) => string } {
  if (index === 0) return { seed, label: (name) => name };
  return {
    seed: createHash('sha256').update(`${seed}|tenant|${index}`).digest().readUInt32BE(0),
    label: (name) => `${name}|${index}`,
  };
}

/** What the tenants share: the server's clock, address and CA, the token signing key, and the emulator-wide totals. */
export interface TenantContext {
  readonly seed: number;
  readonly now: () => Date;
  readonly startedAt: Date;
  readonly origin: () => string;
  readonly caFile: string;
  readonly caCertPem: string;
  readonly signingKey: string;
  readonly totals: () => EmulatorCounters;
}

/** A tenant as the server sees it; tests hold its `handle`. */
export class ServedTenant {
  readonly index: number;
  /** Seed of this tenant's corpus, secrets, fault draws and arrivals. */
  readonly seed: number;
  readonly identity: IdentityState;
  readonly subscriptions = new Map<ContentType, SubscriptionRecord>();
  readonly faultPlan: FaultPlan;
  readonly webhooks: WebhookPoster;
  readonly quiet: boolean;
  auditingEnabled: boolean;
  counters = emptyCounters();
  readonly handle: EmulatorTenant;
  readonly serviceAnnouncements: ServiceAnnouncements;
  readonly auditSearch: AuditSearch;
  readonly #context: TenantContext;
  readonly #corpusOptions: CorpusOptions;
  #corpus: Corpus | undefined;
  readonly #quota: number;
  readonly #anonymousQuota: number;
  readonly #buckets = new Map<string, { minute: number; used: number }>();
  readonly #arrivalLateRate: number;
  #arrivals = 0;
  readonly #notifiedUpTo = new Map<ContentType, Date>();
  readonly #notified = new Map<string, number>();
  readonly #unconfirmed = new Map<ContentType, ContentEntry[]>();

  constructor(index: number, options: EmulatorTenantOptions, context: TenantContext) {
    const derived = derivation(context.seed, index);
    this.index = index;
    this.seed = derived.seed;
    this.#context = context;
    const tenantId = options.tenantId ?? seededGuid(context.seed, derived.label('tenant'));
    const tenantDomain = options.tenantDomain ?? (index === 0 ? 'contoso.onmicrosoft.com' : `tenant${index}.onmicrosoft.com`);
    const secretLabel = index === 0 ? String(context.seed) : `${context.seed}|${index}`;
    this.identity = {
      tenantId, tenantDomain,
      clientId: options.clientId ?? seededGuid(context.seed, derived.label('client')),
      secrets: [{ value: options.clientSecret ?? seededSecret(secretLabel, 0), expires: undefined }],
      certificates: [],
      federatedCredentials: [],
      grantedRoles: options.grantedRoles ?? ['ActivityFeed.Read', 'ActivityFeed.ReadDlp', 'ServiceHealth.Read'],
      graphRoles: options.graphRoles ?? ['ServiceHealth.Read.All', 'ServiceMessage.Read.All', graphAuditSearchPermission],
      tokenLifetimeSeconds: options.tokenLifetimeSeconds ?? 3599,
      generation: 0,
      signingKey: context.signingKey,
    };
    this.quiet = options.quiet ?? false;
    this.#corpusOptions = {
      seed: derived.seed, tenantId, tenantDomain,
      origin: new Date(context.startedAt.getTime() - (options.days ?? 1) * day),
      blobIntervalMinutes: options.blobIntervalMinutes ?? 30,
      recordsPerBlob: options.recordsPerBlob ?? 20,
      lateBlobRate: options.lateBlobRate ?? 0,
      duplicateRate: options.duplicateRate ?? 0,
      ...(options.lateMaxMinutes !== undefined ? { lateMaxMinutes: options.lateMaxMinutes } : {}),
      ...(options.duplicateMaxAgeMinutes !== undefined ? { duplicateMaxAgeMinutes: options.duplicateMaxAgeMinutes } : {}),
      ...(this.quiet ? { grid: false } : {}),
    };
    for (const contentType of options.enabledContentTypes ?? []) this.subscriptions.set(contentType, { status: 'enabled', webhook: null, gaps: [] });
    this.faultPlan = new FaultPlan(derived.seed, options.faults ?? {});
    this.webhooks = new WebhookPoster(context.caCertPem, () => this.count((counters) => { counters.webhookValidations += 1; }));
    this.auditingEnabled = options.auditingEnabled ?? true;
    this.#quota = options.quotaPerMinute ?? 2000;
    this.#anonymousQuota = options.anonymousQuotaPerMinute ?? Math.max(1, Math.floor(this.#quota / 10));
    this.#arrivalLateRate = options.arrivalLateRate ?? 0.2;
    this.serviceAnnouncements = new ServiceAnnouncements(derived.seed, context.startedAt);
    this.auditSearch = new AuditSearch(derived.seed, () => this.corpus, context.now, options.auditSearch ?? {}, (change) => this.count((counters) => change(counters.auditSearch)));
    this.handle = tenantHandle(this, context, secretLabel);
  }

  get tenantId(): string {
    return this.identity.tenantId;
  }

  get corpus(): Corpus {
    this.#corpus ??= new Corpus(this.#corpusOptions);
    return this.#corpus;
  }

  /** Applies a change to this tenant's counters and to the emulator-wide totals. */
  count(change: (counters: EmulatorCounters) => void): void {
    change(this.#context.totals());
    change(this.counters);
  }

  /** Takes one request from the publisher's budget of the given minute (quota clock); false once it is spent. */
  withinQuota(publisher: string, currentMinute: number): boolean {
    const bucket = this.#buckets.get(publisher) ?? { minute: currentMinute, used: 0 };
    if (bucket.minute !== currentMinute) { bucket.minute = currentMinute; bucket.used = 0; }
    bucket.used += 1;
    this.#buckets.set(publisher, bucket);
    return bucket.used <= (publisher === '' ? this.#anonymousQuota : this.#quota);
  }

  truthBlobs(contentType: ContentType | undefined): BlobDescriptor[] {
    const at = this.#context.now();
    return (contentType ? [contentType] : [...contentTypes]).flatMap((type) => this.corpus
      .blobsCreatedIn(type, new Date(at.getTime() - 7 * day), new Date(at.getTime() + 1))
      .filter((blob) => servable(blob, this.subscriptions.get(type), at)));
  }

  /** One step of the arrival generator: a new blob of each content type, some of them late. Quiet tenants get none. */
  arrive(at: Date): void {
    if (this.quiet) return;
    for (const contentType of contentTypes) {
      const late = fraction(this.seed, contentType, 'arrival-late', this.#arrivals) < this.#arrivalLateRate;
      const delay = (20 + Math.floor(fraction(this.seed, contentType, 'arrival-delay', this.#arrivals) * 70)) * minute;
      this.corpus.add(contentType, at, late ? { contentCreated: new Date(at.getTime() - delay), visibleAt: at } : {});
    }
    this.#arrivals += 1;
  }

  /** Notifies each webhook of what became visible since the last call; a tenant without webhooks costs nothing. */
  async deliverNotifications(at: Date): Promise<void> {
    const { tenantId, clientId } = this.identity;
    for (const [contentType, subscription] of this.subscriptions) {
      const webhook = subscription.webhook;
      const since = this.#notifiedUpTo.get(contentType) ?? this.#context.startedAt;
      this.#notifiedUpTo.set(contentType, at);
      if (subscription.status !== 'enabled' || !webhook || webhook.status !== 'enabled') continue;
      if (webhook.expiration !== null && new Date(webhook.expiration) <= at) { webhook.status = 'expired'; continue; }
      // A blob is listed at most 90 minutes after its contentCreated, so that bounds the search.
      const fresh = this.corpus.blobsCreatedIn(contentType, new Date(since.getTime() - 91 * minute), new Date(at.getTime() + 1))
        .filter((blob) => blob.visibleAt >= since && blob.visibleAt <= at && !this.#notified.has(blob.contentId) && servable(blob, subscription, at));
      for (const blob of fresh) this.#notified.set(blob.contentId, blob.visibleAt.getTime());
      for (const [contentId, visibleAt] of this.#notified) if (visibleAt < at.getTime() - day) this.#notified.delete(contentId);
      // A notification not answered 200 is retried on the next tick, as the service retries failed ones.
      const entries = [...(this.#unconfirmed.get(contentType) ?? []), ...fresh.map((blob) => contentEntry(this.#context.origin(), tenantId, blob))];
      if (entries.length === 0) continue;
      const delivered = await this.webhooks.notify(webhook, entries, { tenantId, clientId }, at);
      this.#unconfirmed.set(contentType, delivered ? [] : entries);
      this.count((counters) => { counters.notificationsSent += 1; });
    }
  }
}

function tenantHandle(tenant: ServedTenant, context: TenantContext, secretLabel: string): EmulatorTenant {
  const { identity } = tenant;
  let secretGeneration = 0;
  const handle: EmulatorTenant = {
    index: tenant.index,
    tenantId: identity.tenantId,
    tenantDomain: identity.tenantDomain,
    clientId: identity.clientId,
    clientSecret: identity.secrets[0]!.value,
    caFile: context.caFile,
    get authorityHost() { return context.origin(); },
    get apiRoot() { return context.origin(); },
    get graphRoot() { return `${context.origin()}/graph`; },
    serviceAnnouncements: tenant.serviceAnnouncements,
    setGraphRoles: (roles) => { identity.graphRoles = [...roles]; },
    graphRoles: () => [...identity.graphRoles],
    auditSearch: tenant.auditSearch,
    throttleGraph: (count, retryAfterSeconds) => { Object.assign(tenant.serviceAnnouncements.faults, { throttleNext: count, retryAfterSeconds }); },
    get corpus() { return tenant.corpus; },
    now: context.now,
    groundTruth: (contentType) => new Set(tenant.corpus.recordIds(tenant.truthBlobs(contentType))),
    groundTruthIds: (contentType) => tenant.corpus.recordIds(tenant.truthBlobs(contentType)),
    groundTruthBytes(contentType) {
      const truth = new Map<string, Buffer>();
      for (const { id, text } of tenant.corpus.recordTextsIn(tenant.truthBlobs(contentType))) {
        if (!truth.has(id)) truth.set(id, Buffer.from(text, 'utf8'));
      }
      return truth;
    },
    *groundTruthRecords(contentType) {
      for (const { id, text } of tenant.corpus.recordTextsIn(tenant.truthBlobs(contentType))) yield { id, bytes: Buffer.from(text, 'utf8') };
    },
    groundTruthCount(contentType) {
      const blobs = tenant.truthBlobs(contentType);
      let records = 0;
      for (const _id of tenant.corpus.recordIds(blobs)) records += 1;
      return { records, blobs: blobs.length };
    },
    counters: () => structuredClone(tenant.counters),
    resetCounters: () => { tenant.counters = emptyCounters(tenant.counters.inFlight); tenant.faultPlan.restartNumbering(); },
    setFaults: (next) => { tenant.faultPlan.set(next); },
    faults: () => ({ ...tenant.faultPlan.faults }),
    rotateSecret(rotation = {}) {
      secretGeneration += 1;
      const value = seededSecret(secretLabel, secretGeneration);
      if (rotation.removeOld) identity.secrets.splice(0, identity.secrets.length);
      else if (rotation.expireOld) for (const secret of identity.secrets) secret.expires = context.now();
      identity.secrets.push({ value, expires: undefined });
      return value;
    },
    expireSecrets: () => { for (const secret of identity.secrets) secret.expires = context.now(); },
    registerCertificate: (certPem) => { identity.certificates.push(new X509Certificate(certPem)); },
    addFederatedCredential: ({ issuer, subject, audiences = ['api://AzureADTokenExchange'] }) => { identity.federatedCredentials.push({ issuer, subject, audiences: [...audiences] }); },
    revokeTokens: () => { identity.generation += 1; },
    setAuditingEnabled: (enabled) => { tenant.auditingEnabled = enabled; },
    setGrantedRoles: (roles) => { identity.grantedRoles = [...roles]; },
    setTokenLifetime: (seconds) => { identity.tokenLifetimeSeconds = seconds; },
    addContent: (contentType, addOptions) => tenant.corpus.add(contentType, context.now(), addOptions),
    async notifyWebhook(contentType) {
      const subscription = tenant.subscriptions.get(contentType);
      if (!subscription?.webhook) return 0;
      const at = context.now();
      const entries = tenant.corpus.blobsCreatedIn(contentType, new Date(at.getTime() - day), at)
        .filter((blob) => servable(blob, subscription, at))
        .map((blob) => contentEntry(context.origin(), identity.tenantId, blob));
      await tenant.webhooks.notify(subscription.webhook, entries, { tenantId: identity.tenantId, clientId: identity.clientId }, at);
      tenant.count((counters) => { counters.notificationsSent += 1; });
      return entries.length;
    },
    subscriptions: () => tenant.subscriptions,
    stackOutputs: () => connectorOutputs(handle),
    async writeStackOutputs(file) {
      await writeFile(file, JSON.stringify(connectorOutputs(handle), null, 2) + '\n', { mode: 0o600 });
      await chmod(file, 0o600); // the mode above applies only to a file that did not exist yet
    },
  };
  return handle;
}
