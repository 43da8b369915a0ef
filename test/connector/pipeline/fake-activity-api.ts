import type { ActivityApi, ApiCallOptions, ContentBlob, FetchedContent, Subscription, TimeWindow } from '../../../connector/sources/activity-api/activity-api.ts';
import type { ContentType } from '../../../contract/content-types.ts';
import { ConnectorError } from '../../../connector/core/errors.ts';
import type { RawRecord } from '../../../connector/core/records.ts';

export interface FakeBlob extends ContentBlob {
  records: RawRecord[];
  /** When the blob starts being listed (default: at its contentCreated). */
  visibleAt: number;
}

const minute = 60_000;

/** A realistic SharePoint record as the API sends it (compact JSON), with its bytes. */
export function auditRecord(id: string, operation = 'FileAccessed'): RawRecord {
  const creationTime = '2026-11-24T09:12:44';
  const bytes = Buffer.from(JSON.stringify({
    Id: id, RecordType: 6, CreationTime: creationTime, Operation: operation, OrganizationId: 'b3c1d7a2-5e4f-4a61-9d0e-2f8a7c6b5e41',
    UserType: 0, UserKey: 'i:0h.f|membership|10033fff8a1b2c3d@live.com', Workload: 'SharePoint', ResultStatus: 'Succeeded',
    ObjectId: 'https://contoso.sharepoint.com/sites/finance/Shared Documents/Q4 forecast.xlsx', UserId: 'megan.bowen@contoso.com', ClientIP: '203.0.113.24',
  }));
  return { id, creationTime, bytes };
}

/** An in-memory Management Activity API: listing by contentCreated and visibility, paging, AF codes. */
export class FakeActivityApi implements ActivityApi {
  readonly blobs: FakeBlob[] = [];
  readonly subscribed = new Set<ContentType>();
  readonly expired = new Set<string>();
  /** contentId -> how many more fetches fail (after the client's own retries, as the pipeline sees them). */
  readonly failing = new Map<string, number>();
  readonly listed: TimeWindow[] = [];
  readonly fetched: string[] = [];
  /** contentIds whose body the pipeline gave back, in order, and what was checked at that moment. */
  readonly released: string[] = [];
  onRelease: ((contentId: string) => void) | undefined;
  clockSkewMs = 0;
  pageSize = 3;
  #now: () => number;

  constructor(now: () => number, contentTypes: ContentType[] = ['Audit.SharePoint']) {
    this.#now = now;
    for (const type of contentTypes) this.subscribed.add(type);
  }

  addBlob(contentType: ContentType, contentId: string, createdMs: number, ids: string[], visibleAt = createdMs): FakeBlob {
    const blob: FakeBlob = {
      contentType, contentId, contentUri: `https://manage.office.com/api/v1.0/t/activity/feed/audit/${contentId}`,
      contentCreated: new Date(createdMs).toISOString(), contentExpiration: new Date(createdMs + 7 * 24 * 60 * minute).toISOString(),
      records: ids.map((id) => auditRecord(id)), visibleAt,
    };
    this.blobs.push(blob);
    return blob;
  }

  async startSubscription(contentType: ContentType): Promise<Subscription> {
    this.subscribed.add(contentType);
    return { contentType, status: 'enabled', webhook: null };
  }

  async stopSubscription(contentType: ContentType): Promise<void> {
    this.subscribed.delete(contentType);
  }

  async listSubscriptions(): Promise<Subscription[]> {
    return [...this.subscribed].map((contentType) => ({ contentType, status: 'enabled', webhook: null }));
  }

  async *listContent(contentType: ContentType, window: TimeWindow, options?: ApiCallOptions): AsyncIterable<ContentBlob[]> {
    options?.abortSignal?.throwIfAborted();
    const serverNow = this.#now() + this.clockSkewMs;
    if (window.end.getTime() - window.start.getTime() > 24 * 60 * minute || window.start.getTime() < serverNow - 7 * 24 * 60 * minute || window.end.getTime() > serverNow + 1000) {
      throw new ConnectorError('AF20055', `window ${window.start.toISOString()}..${window.end.toISOString()} rejected`);
    }
    if (!this.subscribed.has(contentType)) throw new ConnectorError('AF20022', 'no subscription');
    this.listed.push(window);
    // Pages are not in contentCreated order: newest first, as nothing in the API promises an order.
    const matching = this.blobs
      .filter((b) => b.contentType === contentType && b.visibleAt <= this.#now() && Date.parse(b.contentCreated) >= window.start.getTime() && Date.parse(b.contentCreated) < window.end.getTime())
      .sort((a, b) => b.contentCreated.localeCompare(a.contentCreated));
    for (let i = 0; i < matching.length; i += this.pageSize) {
      yield matching.slice(i, i + this.pageSize).map(({ records: _r, visibleAt: _v, ...blob }) => blob);
    }
  }

  async fetchContent(blob: ContentBlob, options?: ApiCallOptions): Promise<FetchedContent> {
    options?.abortSignal?.throwIfAborted();
    this.fetched.push(blob.contentId);
    if (this.expired.has(blob.contentId)) throw new ConnectorError('AF20051', 'content expired');
    const failures = this.failing.get(blob.contentId) ?? 0;
    if (failures > 0) {
      this.failing.set(blob.contentId, failures - 1);
      throw new ConnectorError('AF50000', 'internal error', { retryable: true });
    }
    const found = this.blobs.find((b) => b.contentId === blob.contentId)!;
    // Fresh buffers, as a real fetch gives: nothing the pipeline holds is shared with the fake.
    const records = found.records.map((record) => ({ ...record, bytes: Buffer.from(record.bytes) }));
    return {
      records, bytes: records.reduce((n, r) => n + r.bytes.length + 1, 1),
      release: () => { this.onRelease?.(blob.contentId); this.released.push(blob.contentId); },
    };
  }
}
