/**
 * Microsoft Graph's service announcements as the collector sees them (`/admin/serviceAnnouncement/…`, v1.0):
 * issues (incidents and advisories, serviceHealthIssue) and messages (message-centre posts, serviceUpdateMessage)
 * listed by change (`$filter=lastModifiedDateTime ge …`, every `@odata.nextLink` followed), and the health overview of
 * each service (serviceHealth: `{id, service, status}`). The implementation owns tokens (the Graph audience of the
 * configured cloud), retries and throttling (429/503 with Retry-After); failures are ConnectorErrors (graph-errors.ts).
 */
import type { ApiCallOptions } from '../activity-api/activity-api.ts';

/** One issue or message exactly as Graph served it, with what the collector decides by. */
export interface AnnouncementItem {
  /** `EX226792`, `MC172851`, ... */
  readonly id: string;
  /** As Graph wrote it (DateTimeOffset, UTC, e.g. `2020-11-14T18:20:24.767Z`). */
  readonly lastModifiedDateTime: string;
  /** The item's JSON object, the bytes Graph sent. */
  readonly bytes: Buffer;
}

export type AnnouncementKind = 'issues' | 'messages';

/** One service's health now (`GET /admin/serviceAnnouncement/healthOverviews`). */
export interface ServiceHealthOverview {
  readonly id: string;
  readonly service: string;
  readonly status: string;
}

export interface ServiceHealthApi {
  /** Items modified at or after `since`, one page at a time, following `@odata.nextLink` to the end. */
  listChanged(kind: AnnouncementKind, since: Date, options?: ApiCallOptions): AsyncIterable<AnnouncementItem[]>;
  /** Every service's overview (all pages). */
  healthOverviews(options?: ApiCallOptions): Promise<ServiceHealthOverview[]>;
  /** Graph's time minus local time, learned from responses' Date header (0 until one is seen). */
  readonly clockSkewMs: number;
}
