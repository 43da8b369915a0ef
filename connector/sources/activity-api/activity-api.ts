import type { RequestPriority } from '../../http/request-budget.ts';
import type { RejectedElement } from './content-records.ts';
import type { RawRecord } from '../../core/records.ts';
import type { ApiRate } from '../../core/commit.ts';
import type { ContentType } from '../../../contract/content-types.ts';

/** How long the API keeps content and lists it: 7 days, in the server's time. */
export const retentionMs = 7 * 24 * 3_600_000;

/** One entry of `subscriptions/content`: a blob of records that became available at `contentCreated`. */
export interface ContentBlob {
  readonly contentType: ContentType;
  readonly contentId: string;
  readonly contentUri: string;
  /** ISO UTC time the blob became available (listing is by this time, not the events' CreationTime). */
  readonly contentCreated: string;
  /** ISO UTC time after which fetching gives AF20051. */
  readonly contentExpiration: string;
}

export interface Subscription {
  readonly contentType: string;
  /** `enabled`, `disabled`, or absent when the content type was never started. */
  readonly status: string | undefined;
  readonly webhook: unknown;
}

/** Start inclusive, end exclusive, at most 24 h apart, start no more than 7 days back. */
export interface TimeWindow {
  readonly start: Date;
  readonly end: Date;
}

export interface ApiCallOptions {
  readonly abortSignal?: AbortSignal;
  /** 'background' requests (a sweep) wait while live ones are queued; default 'live'. */
  readonly priority?: RequestPriority;
}

export interface FetchedContent {
  /** The blob's records in the order of the body, each as its exact bytes. */
  readonly records: RawRecord[];
  /** Elements of the body that are not audit records (not an object with a string Id), set aside. */
  readonly rejected?: readonly RejectedElement[];
  /** Size of the response body, for throughput telemetry. */
  readonly bytes: number;
  /**
   * Gives the body's buffer back for reuse. Call it once no record of this blob is referenced any more (its batch
   * committed): the records' bytes may be overwritten afterwards. Never calling it is safe (the buffer is garbage).
   */
  readonly release?: () => void;
}

/**
 * The Office 365 Management Activity API as the collector sees it. The implementation owns tokens,
 * PublisherIdentifier, retries, throttling and the request budget; failures are ConnectorErrors whose
 * `code` is the Microsoft code (AF20022, AF20051, AF429, ...) or a transport code.
 */
export interface ActivityApi {
  startSubscription(contentType: ContentType, options?: ApiCallOptions): Promise<Subscription>;
  stopSubscription(contentType: ContentType, options?: ApiCallOptions): Promise<void>;
  listSubscriptions(options?: ApiCallOptions): Promise<Subscription[]>;
  /** Yields one page at a time, following NextPageUri to the end. */
  listContent(contentType: ContentType, window: TimeWindow, options?: ApiCallOptions): AsyncIterable<ContentBlob[]>;
  fetchContent(blob: ContentBlob, options?: ApiCallOptions): Promise<FetchedContent>;
  /** Server time minus local time, learned from responses' Date header (0 until one is seen). */
  readonly clockSkewMs: number;
  /** The request rate, where the client has an adaptive budget. */
  readonly rate?: ApiRate;
}
