/**
 * A tenant's subscriptions to the Management Activity API, started once per content type (starting is idempotent at
 * the API too) by whoever needs one first: a unit before its first pass, or the lister when the service says a
 * subscription is missing (AF20022), which starts it again.
 */
import type { ContentType } from '../../../contract/content-types.ts';
import type { ActivityApi } from './activity-api.ts';

export class Subscriptions {
  readonly #api: Pick<ActivityApi, 'startSubscription'>;
  readonly #started = new Map<ContentType, Promise<void>>();

  constructor(api: Pick<ActivityApi, 'startSubscription'>) {
    this.#api = api;
  }

  /** Starts the content type's subscription unless started before (`again`: the service says it is missing). A failed start is tried again by the next call. */
  ensure(contentType: ContentType, signal?: AbortSignal, options: { readonly again?: boolean } = {}): Promise<void> {
    if (options.again) this.#started.delete(contentType);
    let started = this.#started.get(contentType);
    if (!started) {
      started = this.#api.startSubscription(contentType, signal ? { abortSignal: signal } : {}).then(() => {});
      this.#started.set(contentType, started);
      started.catch(() => this.#started.delete(contentType));
    }
    return started;
  }
}

const byApi = new WeakMap<object, Subscriptions>();

/** The subscriptions of the tenant an API client speaks for (one per client). */
export function subscriptionsOf(api: Pick<ActivityApi, 'startSubscription'>): Subscriptions {
  let subscriptions = byApi.get(api);
  if (!subscriptions) byApi.set(api, subscriptions = new Subscriptions(api));
  return subscriptions;
}
