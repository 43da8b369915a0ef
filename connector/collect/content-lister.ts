/**
 * The content lister: pages of `subscriptions/content` for one window, streamed (one page in memory at a time).
 * A content type without a subscription (AF20022) is started and its window listed again; entries repeated by
 * that restart, or by the service itself across pages, are yielded once.
 */
import type { ActivityApi, ContentBlob, TimeWindow } from '../api/activity-api.ts';
import type { ContentType } from '../api/content-types.ts';
import { ConnectorError } from '../errors.ts';
import type { Logger } from '../status/log.ts';
import type { ComponentReporter } from '../status/telemetry.ts';

export interface ListWindowOptions {
  readonly abortSignal?: AbortSignal | undefined;
  readonly logger?: Logger;
  readonly telemetry?: ComponentReporter;
}

export async function* listWindow(api: ActivityApi, contentType: ContentType, window: TimeWindow, options: ListWindowOptions = {}): AsyncGenerator<ContentBlob[]> {
  const call = options.abortSignal ? { abortSignal: options.abortSignal } : {};
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
      await api.startSubscription(contentType, call);
    }
  }
}
