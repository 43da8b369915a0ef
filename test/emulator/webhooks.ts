/**
 * The service's side of webhooks: the validation POST on subscriptions/start, notification POSTs as content
 * becomes available (with Webhook-AuthID), and the log of attempts that subscriptions/notifications lists.
 */
import { randomBytes } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import type { ContentType } from '../../contract/content-types.ts';

export interface Webhook {
  status: 'enabled' | 'disabled' | 'expired';
  address: string;
  authId: string | null;
  expiration: string | null;
}

export interface ContentEntry {
  readonly contentType: ContentType;
  readonly contentId: string;
  readonly contentUri: string;
  readonly contentCreated: string;
  readonly contentExpiration: string;
}

export interface NotificationAttempt extends ContentEntry {
  readonly notificationSent: string;
  readonly notificationStatus: 'success' | 'failed';
}

export type Validation = { ok: true } | { ok: false; reason: string };

export class WebhookPoster {
  readonly #ca: string;
  readonly #onValidate: () => void;
  readonly #attempts = new Map<ContentType, NotificationAttempt[]>();

  constructor(ca: string, onValidate: () => void = () => {}) {
    this.#ca = ca;
    this.#onValidate = onValidate;
  }

  /** The validation request of the reference: Webhook-ValidationCode header, the same code in the body. */
  async validate(address: string, authId: string | null): Promise<Validation> {
    if (!/^https:\/\//i.test(address)) return { ok: false, reason: 'The address must begin with HTTPS.' };
    this.#onValidate();
    const code = randomBytes(16).toString('hex');
    const status = await this.#post(address, { validationCode: code }, { 'Webhook-ValidationCode': code, ...(authId ? { 'Webhook-AuthID': authId } : {}) });
    return status === 200 ? { ok: true } : { ok: false, reason: 'The endpoint did not return HTTP 200.' };
  }

  /** Posts one notification (an array of content entries plus tenantId and clientId) and logs the attempt. */
  async notify(webhook: Webhook, entries: ContentEntry[], ids: { tenantId: string; clientId: string }, now: Date): Promise<boolean> {
    if (entries.length === 0) return true;
    const body = entries.map((entry) => ({ tenantId: ids.tenantId, clientId: ids.clientId, ...entry }));
    const status = await this.#post(webhook.address, body, webhook.authId ? { 'Webhook-AuthID': webhook.authId } : {});
    const notificationStatus = status === 200 ? 'success' : 'failed';
    for (const entry of entries) {
      const list = this.#attempts.get(entry.contentType) ?? [];
      list.push({ ...entry, notificationSent: now.toISOString(), notificationStatus });
      this.#attempts.set(entry.contentType, list);
    }
    return status === 200;
  }

  /** Attempts for content whose contentCreated is in [start, end), in the order they were sent. */
  attempts(contentType: ContentType, start: Date, end: Date): NotificationAttempt[] {
    return (this.#attempts.get(contentType) ?? []).filter((attempt) => {
      const created = new Date(attempt.contentCreated);
      return created >= start && created < end;
    });
  }

  #post(address: string, body: unknown, headers: Record<string, string>): Promise<number> {
    return new Promise((resolve) => {
      let request;
      try {
        request = httpsRequest(address, {
          method: 'POST', ca: this.#ca, timeout: 10_000,
          headers: { 'Content-Type': 'application/json; charset=utf-8', ...headers },
        }, (response) => {
          response.resume();
          response.on('end', () => resolve(response.statusCode ?? 0));
          response.on('error', () => resolve(0));
        });
      } catch {
        resolve(0);
        return;
      }
      request.on('timeout', () => request.destroy());
      request.on('error', () => resolve(0));
      request.end(JSON.stringify(body));
    });
  }
}
