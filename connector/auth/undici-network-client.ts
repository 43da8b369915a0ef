import type { INetworkModule, NetworkRequestOptions, NetworkResponse } from '@azure/msal-node';
import { request, type Dispatcher } from 'undici';

/** msal-node's network module on undici, so tokens and API calls share one agent and one CA trust. */
export class UndiciNetworkClient implements INetworkModule {
  readonly #dispatcher: Dispatcher;
  /** The last transport failure: msal wraps it in its own error (endpoints_resolution_error), hiding the cause. */
  lastTransportError: { code: string; message: string } | undefined;

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
    let response;
    let text: string;
    try {
      response = await request(url, {
        method,
        dispatcher: this.#dispatcher,
        headers: options?.headers ?? {},
        ...(options?.body !== undefined ? { body: options.body } : {}),
        ...(timeout ? { headersTimeout: timeout, bodyTimeout: timeout } : {}),
      });
      text = await response.body.text();
    } catch (error) {
      const cause = error as { code?: string; message?: string };
      this.lastTransportError = { code: cause.code ?? 'ECONNRESET', message: `${new URL(url).host}: ${cause.message ?? String(error)}` };
      throw error;
    }
    this.lastTransportError = undefined;
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(response.headers)) {
      if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
    }
    let body: unknown;
    try {
      body = text === '' ? {} : JSON.parse(text);
    } catch {
      body = { error: 'invalid_response', error_description: `non-JSON answer from ${new URL(url).host} (HTTP ${response.statusCode})` };
    }
    return { headers, body: body as T, status: response.statusCode };
  }
}
