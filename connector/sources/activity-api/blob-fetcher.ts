/**
 * The blob fetcher: fetches content blobs with bounded concurrency (one limit shared by every content type) and
 * turns each into an outcome the pipeline can act on in listing order: records, expired (AF20051: the blob is
 * gone at the source), or failed (after the API client's own retries: hold the checkpoint, try next pass).
 */
import type { ActivityApi, ContentBlob } from './activity-api.ts';
import type { RejectedElement } from './content-records.ts';
import type { RequestPriority } from '../../http/request-budget.ts';
import type { RawRecord } from '../../core/records.ts';
import { ConnectorError } from '../../core/errors.ts';
import type { Slots } from '../../http/slots.ts';

export type FetchOutcome =
  | { readonly kind: 'records'; readonly blob: ContentBlob; readonly records: readonly RawRecord[]; readonly rejected: readonly RejectedElement[]; readonly bytes: number; readonly release?: (() => void) | undefined }
  | { readonly kind: 'expired'; readonly blob: ContentBlob; readonly error: ConnectorError }
  | { readonly kind: 'failed'; readonly blob: ContentBlob; readonly error: unknown };


export class BlobFetcher {
  readonly #api: ActivityApi;
  readonly #slots: Slots;

  constructor(api: ActivityApi, slots: Slots) {
    this.#api = api;
    this.#slots = slots;
  }

  /** Never rejects except when `abortSignal` fires: every other failure is an outcome. */
  async fetch(blob: ContentBlob, options: { abortSignal?: AbortSignal | undefined; priority?: RequestPriority } = {}): Promise<FetchOutcome> {
    await this.#slots.acquire(options.abortSignal);
    try {
      const fetched = await this.#api.fetchContent(blob, { ...(options.abortSignal ? { abortSignal: options.abortSignal } : {}), ...(options.priority ? { priority: options.priority } : {}) });
      return { kind: 'records', blob, records: fetched.records, rejected: fetched.rejected ?? [], bytes: fetched.bytes, release: fetched.release };
    } catch (error) {
      if (options.abortSignal?.aborted) throw error;
      if (error instanceof ConnectorError && error.code === 'AF20051') return { kind: 'expired', blob, error };
      return { kind: 'failed', blob, error };
    } finally {
      this.#slots.release();
    }
  }
}
