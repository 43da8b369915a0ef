/**
 * Fetch ahead, in order, with a bound: up to `ahead` blobs of one content type are being fetched (or wait,
 * fetched, to be taken) while their predecessors are processed; outcomes come out in listing order. Listing the
 * next page never holds back a blob that is already fetched. The fetcher's shared slots bound the fetches
 * across content types.
 */
import type { ContentBlob } from './activity-api.ts';
import type { RequestPriority } from '../../http/request-budget.ts';
import type { BlobFetcher, FetchOutcome } from './blob-fetcher.ts';

export async function* fetchAhead(blobs: AsyncIterable<ContentBlob>, fetcher: BlobFetcher, ahead: number, abortSignal?: AbortSignal, priority: RequestPriority = 'live'): AsyncGenerator<FetchOutcome> {
  const queue: Array<{ promise: Promise<FetchOutcome>; settled: boolean }> = [];
  const listing = blobs[Symbol.asyncIterator]();
  let next: Promise<IteratorResult<ContentBlob>> | undefined;
  let listed = false;
  const take = (result: IteratorResult<ContentBlob>) => {
    next = undefined;
    if (result.done) {
      listed = true;
      return;
    }
    const entry = { promise: fetcher.fetch(result.value, { abortSignal, priority }), settled: false };
    entry.promise.then(() => { entry.settled = true; }, () => { entry.settled = true; });
    queue.push(entry);
  };
  try {
    for (;;) {
      if (!listed && next === undefined && queue.length < Math.max(1, ahead)) next = listing.next();
      const head = queue[0];
      if (head === undefined) {
        if (next === undefined) return;
        take(await next);
        continue;
      }
      if (next !== undefined && !head.settled) {
        // Whichever comes first: the next listed blob (start fetching it) or the head's outcome.
        const first = await Promise.race([next.then((result) => ({ listedBlob: result })), head.promise.then(() => undefined, () => undefined)]);
        if (first !== undefined) {
          take(first.listedBlob);
          continue;
        }
      }
      queue.shift();
      yield await head.promise;
    }
  } finally {
    for (const entry of queue) entry.promise.catch(() => {});
    if (next !== undefined) next.catch(() => {});
    if (!listed) await listing.return?.(undefined).catch(() => {});
  }
}
