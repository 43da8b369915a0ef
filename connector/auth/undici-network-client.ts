import { AsyncLocalStorage } from 'node:async_hooks';
import type { INetworkModule, NetworkRequestOptions, NetworkResponse } from '@azure/msal-node';
import { request, type Dispatcher } from 'undici';
import { transportError, type TransportError } from '../http/transport-errors.ts';

/**
 * What happened on the wire during one token acquisition. msal wraps transport failures and metadata
 * failures in its own generic errors (network_error, endpoints_resolution_error); the token provider reads
 * this to tell the user the real cause. One record per acquisition, via AsyncLocalStorage, so concurrent
 * acquisitions never see each other's failures.
 */
export interface WireRecord {
  transport?: TransportError;
  /** The last answer with status >= 400 (e.g. the OpenID metadata of an unknown tenant carries AADSTS90002). */
  refusal?: { readonly status: number; readonly body: unknown };
}

export const wireRecords = new AsyncLocalStorage<WireRecord>();

/** How long msal's requests wait for headers, then for each body chunk, unless msal gives its own timeout. */
const defaultTimeoutMs = 30_000;

/** msal-node's network module on undici, so tokens and API calls share one agent and one CA trust. */
export class UndiciNetworkClient implements INetworkModule {
  readonly #dispatcher: Dispatcher;

  constructor(dispatcher: Dispatcher) {
    this.#dispatcher = dispatcher;
  }

  sendGetRequestAsync<T>(url: string, options?: NetworkRequestOptions, timeout?: number): Promise<NetworkResponse<T>> {
    return this.#send<T>('GET', url, options, timeout);
  }

  sendPostRequestAsync<T>(url: string, options?: NetworkRequestOptions): Promise<NetworkResponse<T>> {
    return this.#send<T>('POST', url, options);
  }

  async #send<T>(method: 'GET' | 'POST', url: string, options: NetworkRequestOptions | undefined, timeout?: number): Promise<NetworkResponse<T>> {
    const record = wireRecords.getStore();
    const timeoutMs = timeout ?? defaultTimeoutMs;
    let status: number;
    let text: string;
    const headers: Record<string, string> = {};
    try {
      const response = await request(url, {
        method,
        dispatcher: this.#dispatcher,
        headers: options?.headers ?? {},
        ...(options?.body !== undefined ? { body: options.body } : {}),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      status = response.statusCode;
      text = await response.body.text();
      for (const [name, value] of Object.entries(response.headers)) {
        if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
      }
    } catch (error) {
      const failure = transportError(error, url);
      if (record) record.transport = failure;
      throw failure;
    }
    let body: unknown;
    try {
      body = text === '' ? {} : JSON.parse(text);
    } catch {
      body = { error: 'invalid_response', error_description: `the identity endpoint ${new URL(url).host} answered HTTP ${status} with a body that is not JSON` };
    }
    if (status >= 400 && record) record.refusal = { status, body };
    return { headers, body: body as T, status };
  }
}
