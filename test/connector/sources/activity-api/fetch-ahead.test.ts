import { describe, expect, it } from 'vitest';
import type { ActivityApi, ContentBlob, FetchedContent } from '../../../../connector/sources/activity-api/activity-api.ts';
import { BlobFetcher, type FetchOutcome } from '../../../../connector/sources/activity-api/blob-fetcher.ts';
import { Slots } from '../../../../connector/http/slots.ts';
import { fetchAhead } from '../../../../connector/sources/activity-api/fetch-ahead.ts';

const blob = (contentId: string): ContentBlob => ({
  contentType: 'Audit.Exchange', contentId, contentUri: `https://manage.office.com/api/v1.0/t/activity/feed/audit/${contentId}`,
  contentCreated: '2026-11-25T10:00:00.000Z', contentExpiration: '2026-12-02T10:00:00.000Z',
});

function deferred<T>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => { resolve = r; });
  return { promise, resolve };
}

/** An API whose fetches finish when the test says so. */
function controlledApi() {
  const pending = new Map<string, ReturnType<typeof deferred<FetchedContent>>>();
  const started: string[] = [];
  const api = {
    clockSkewMs: 0,
    fetchContent(b: ContentBlob) {
      started.push(b.contentId);
      const d = deferred<FetchedContent>();
      pending.set(b.contentId, d);
      return d.promise;
    },
  } as unknown as ActivityApi;
  const finish = (id: string) => pending.get(id)!.resolve({ records: [], bytes: 2 });
  return { api, started, finish };
}

async function* listed(ids: string[], gate?: Promise<void>): AsyncGenerator<ContentBlob> {
  for (const [index, id] of ids.entries()) {
    if (gate && index === 2) await gate;
    yield blob(id);
  }
}

describe('fetchAhead', () => {
  it('yields outcomes in listing order whatever order the fetches finish in', async () => {
    const { api, finish } = controlledApi();
    const outcomes = fetchAhead(listed(['a', 'b', 'c']), new BlobFetcher(api, new Slots(8)), 3);
    const collected: FetchOutcome[] = [];
    const done = (async () => { for await (const outcome of outcomes) collected.push(outcome); })();
    await new Promise((r) => setImmediate(r));
    finish('c');
    finish('b');
    finish('a');
    await done;
    expect(collected.map((o) => o.blob.contentId)).toEqual(['a', 'b', 'c']);
  });

  it('keeps at most `ahead` blobs fetched or in flight', async () => {
    const { api, started, finish } = controlledApi();
    const outcomes = fetchAhead(listed(['a', 'b', 'c', 'd', 'e']), new BlobFetcher(api, new Slots(8)), 2)[Symbol.asyncIterator]();
    const first = outcomes.next();
    await vi_waitFor(() => started.length === 2);
    await new Promise((r) => setImmediate(r));
    expect(started).toEqual(['a', 'b']);
    finish('a');
    expect((await first).value?.blob.contentId).toBe('a');
    const second = outcomes.next();
    await vi_waitFor(() => started.length === 3);
    expect(started).toEqual(['a', 'b', 'c']);
    finish('b');
    finish('c');
    expect((await second).value?.blob.contentId).toBe('b');
    await outcomes.return(undefined);
  });

  it('hands out a fetched blob while the listing of the next page still waits', async () => {
    const { api, finish } = controlledApi();
    const gate = deferred<void>();
    const outcomes = fetchAhead(listed(['a', 'b', 'c'], gate.promise), new BlobFetcher(api, new Slots(8)), 8)[Symbol.asyncIterator]();
    const first = outcomes.next();
    await new Promise((r) => setImmediate(r));
    finish('a');
    expect((await first).value?.blob.contentId).toBe('a'); // the listing is still blocked on the gate
    gate.resolve();
    finish('b');
    expect((await outcomes.next()).value?.blob.contentId).toBe('b');
    const third = outcomes.next();
    await vi_waitFor(() => { try { finish('c'); return true; } catch { return false; } });
    expect((await third).value?.blob.contentId).toBe('c');
    expect((await outcomes.next()).done).toBe(true);
  });
});

/** Polls a synchronous condition across turns of the event loop, with a deadline. */
async function vi_waitFor(condition: () => boolean, deadlineMs = 5_000): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((r) => setImmediate(r));
  }
}
