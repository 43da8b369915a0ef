/**
 * The content lister: pages of `subscriptions/content` for one window, streamed (one page in memory at a time).
 * A content type without a subscription (AF20022) is started and its window listed again; entries repeated by
 * that restart, or by the service itself across pages, are yielded once. `listNewBlobs` walks a pass's windows
 * and yields, one blob at a time, those not delivered before.
 */
import type { ActivityApi, ContentBlob, TimeWindow } from './activity-api.ts';
import type { ContentType } from '../../../contract/content-types.ts';
import type { RequestPriority } from '../../http/request-budget.ts';
import { ConnectorError } from '../../core/errors.ts';
import { ensureSubscription } from './subscriptions.ts';
import type { Logger } from '../../observe/log.ts';
import type { ComponentReporter } from '../../observe/telemetry.ts';

export interface ListWindowOptions {
  readonly abortSignal?: AbortSignal | undefined;
  /** 'background' for a sweep: its listing waits while live requests are queued. */
  readonly priority?: RequestPriority;
  readonly logger?: Logger;
  readonly telemetry?: ComponentReporter;
}

export async function* listWindow(api: ActivityApi, contentType: ContentType, window: TimeWindow, options: ListWindowOptions = {}): AsyncGenerator<ContentBlob[]> {
  const call = { ...(options.abortSignal ? { abortSignal: options.abortSignal } : {}), ...(options.priority ? { priority: options.priority } : {}) };
  const seen = new Set<string>();
  for (let started = false; ; started = true) {
    try {
      for await (const page of api.listContent(contentType, window, call)) {
        const fresh = page.filter((blob) => !seen.has(blob.contentId));
        for (const blob of fresh) seen.add(blob.contentId);
        if (fresh.length > 0) yield fresh;
      }
      return;
    } catch (error) {
      if (started || !(error instanceof ConnectorError) || error.code !== 'AF20022') throw error;
      options.logger?.warn({ component: 'lister', contentType, code: 'AF20022' }, 'no subscription for this content type: starting it and listing again');
      options.telemetry?.error({ stage: 'receiving', code: 'AF20022', message: `no subscription for ${contentType}: started it`, discarded: 0 });
      await ensureSubscription(api, contentType, options.abortSignal, { again: true });
    }
  }
}

/** What a pass learns from the listing: each blob it yields, each window listed to the end, the window that failed. */
export interface ListingObserver {
  /** A blob about to be yielded: it holds the checkpoint until acknowledged. */
  listed(blob: ContentBlob): void;
  /** Every page of the window ending here was listed. */
  windowListed(end: Date): void;
  /** Listing a window failed (after the client's retries): the pass lists no further windows. */
  listingFailed(error: unknown, window: TimeWindow): void;
}

export interface NewBlobsOptions extends ListWindowOptions {
  /** Which of these contentIds were delivered already (asked once per page). */
  readonly delivered: (contentIds: readonly string[]) => Promise<Set<string>>;
  readonly observer: ListingObserver;
}

/** The blobs of `windows`, in listing order, less those delivered before. Stops at the first window that fails. */
export async function* listNewBlobs(api: ActivityApi, contentType: ContentType, windows: readonly TimeWindow[], options: NewBlobsOptions): AsyncGenerator<ContentBlob> {
  for (const window of windows) {
    try {
      for await (const page of listWindow(api, contentType, window, options)) {
        const delivered = await options.delivered(page.map((blob) => blob.contentId));
        for (const listed of page) {
          if (delivered.has(listed.contentId)) continue;
          const blob = placedInTime(listed, window, contentType, options.logger);
          options.observer.listed(blob);
          yield blob;
        }
      }
    } catch (error) {
      if (options.abortSignal?.aborted) throw error;
      options.observer.listingFailed(error, window);
      return;
    }
    options.observer.windowListed(window.end);
  }
}

/**
 * A listing entry whose contentCreated is not a readable time cannot be ordered against the checkpoint: it is
 * placed at the start of the window that listed it (the service lists a blob in the window its contentCreated
 * falls in), so that it holds the checkpoint there until delivered, and is recorded with that time.
 */
function placedInTime(blob: ContentBlob, window: TimeWindow, contentType: ContentType, logger: Logger | undefined): ContentBlob {
  if (Number.isFinite(Date.parse(blob.contentCreated))) return blob;
  const placed = window.start.toISOString();
  logger?.warn({ component: 'lister', contentType, contentId: blob.contentId, contentCreated: blob.contentCreated, placedAt: placed }, 'listing entry with an unreadable contentCreated: placed at the start of its listing window');
  return { ...blob, contentCreated: placed };
}
