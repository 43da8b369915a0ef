/**
 * A tenant's subscriptions to the Management Activity API, started once per content type (starting is idempotent at
 * the API too) by whoever needs one first: a unit before its first pass, or the lister when the service says a
 * subscription is missing (AF20022), which starts it again. One set per API client (one per tenant runtime).
 */
import type { ContentType } from '../../../contract/content-types.ts';
import type { ActivityApi } from './activity-api.ts';

const startedBy = new WeakMap<object, Map<ContentType, Promise<void>>>();

/** Starts the content type's subscription unless started before (`again`: the service says it is missing). A failed start is tried again by the next call. */
export function ensureSubscription(api: Pick<ActivityApi, 'startSubscription'>, contentType: ContentType, signal?: AbortSignal, options: { readonly again?: boolean } = {}): Promise<void> {
  let started = startedBy.get(api);
  if (!started) startedBy.set(api, started = new Map());
  if (options.again) started.delete(contentType);
  let starting = started.get(contentType);
  if (!starting) {
    starting = api.startSubscription(contentType, signal ? { abortSignal: signal } : {}).then(() => {});
    started.set(contentType, starting);
    const known = started;
    starting.catch(() => known.delete(contentType));
  }
  return starting;
}
