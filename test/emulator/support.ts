/**
 * What the stand-in's own tests share: an undici Agent trusting the throwaway CA, an unmodified msal-node
 * ConfidentialClientApplication wired to the stand-in, and a small Management Activity API caller.
 */
import { ConfidentialClientApplication, type Configuration, type INetworkModule, type NetworkRequestOptions, type NetworkResponse } from '@azure/msal-node';
import { Agent, request } from 'undici';
import type { EmulatorTenant } from './tenant.ts';

/** An msal network module over undici that trusts the CA and refuses, without sending, anything off 127.0.0.1. */
export function loopbackNetwork(agent: Agent, asked: string[] = []): INetworkModule {
  async function send<T>(url: string, method: 'GET' | 'POST', options?: NetworkRequestOptions): Promise<NetworkResponse<T>> {
    asked.push(`${method} ${url}`);
    if (new URL(url).hostname !== '127.0.0.1') throw new Error(`refused to leave the machine: ${url}`);
    const response = await request(url, { method, dispatcher: agent, headers: options?.headers ?? {}, ...(options?.body !== undefined ? { body: options.body } : {}) });
    const text = await response.body.text();
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(response.headers)) if (typeof value === 'string') headers[name] = value;
    return { status: response.statusCode, headers, body: (text ? JSON.parse(text) : {}) as T };
  }
  return {
    sendGetRequestAsync: (url, options) => send(url, 'GET', options),
    sendPostRequestAsync: (url, options) => send(url, 'POST', options),
  };
}

/** The msal-node configuration a connector needs against the stand-in (or any non-Microsoft authority host). */
export function msalConfiguration(emulator: EmulatorTenant, agent: Agent, credential: Configuration['auth'] extends infer A ? Partial<A> : never, asked?: string[]): Configuration {
  return {
    auth: {
      clientId: emulator.clientId,
      authority: `${emulator.authorityHost}/${emulator.tenantId}`,
      knownAuthorities: [new URL(emulator.authorityHost).host],
      ...credential,
    },
    system: { networkClient: loopbackNetwork(agent, asked) },
  };
}

export async function msalToken(emulator: EmulatorTenant, agent: Agent, credential: Parameters<typeof msalConfiguration>[2] = {}, scope = `${emulator.apiRoot}/.default`): Promise<string> {
  const auth = Object.keys(credential).length > 0 ? credential : { clientSecret: emulator.clientSecret };
  const client = new ConfidentialClientApplication(msalConfiguration(emulator, agent, auth));
  const result = await client.acquireTokenByClientCredential({ scopes: [scope] });
  if (!result?.accessToken) throw new Error('no access token');
  return result.accessToken;
}

export interface ApiAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  // Tests read whatever the service answered.
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  text: string;
  /** The body exactly as received. */
  bytes: Buffer;
}

/** Calls the activity feed; `path` is relative to /activity/feed/ or a full URL; PublisherIdentifier is added when absent. */
export async function callApi(emulator: EmulatorTenant, agent: Agent, token: string | undefined, path: string, options: { method?: 'GET' | 'POST'; body?: string; publisher?: string | null; headers?: Record<string, string> } = {}): Promise<ApiAnswer> {
  const url = new URL(path.startsWith('https://') ? path : `${emulator.apiRoot}/api/v1.0/${emulator.tenantId}/activity/feed/${path}`);
  if (options.publisher !== null && !url.searchParams.has('PublisherIdentifier')) {
    url.searchParams.set('PublisherIdentifier', options.publisher ?? emulator.tenantId);
  }
  const response = await request(url, {
    method: options.method ?? 'GET', dispatcher: agent,
    headers: { ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}), 'content-type': 'application/json', ...options.headers },
    ...(options.body !== undefined ? { body: options.body } : {}),
  });
  const bytes = Buffer.from(await response.body.arrayBuffer());
  const text = bytes.toString('utf8');
  let body: unknown;
  try { body = text ? JSON.parse(text) : undefined; } catch { body = text; }
  return { status: response.statusCode, headers: response.headers, body, text, bytes };
}

export async function postForm(emulator: EmulatorTenant, agent: Agent, tenant: string, form: Record<string, string>): Promise<ApiAnswer> {
  const response = await request(`${emulator.authorityHost}/${tenant}/oauth2/v2.0/token`, {
    method: 'POST', dispatcher: agent, headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form).toString(),
  });
  const bytes = Buffer.from(await response.body.arrayBuffer());
  const text = bytes.toString('utf8');
  return { status: response.statusCode, headers: response.headers, body: JSON.parse(text), text, bytes };
}

/** UTC in the API's YYYY-MM-DDTHH:MM:SS form. */
export function apiTime(date: Date): string {
  return date.toISOString().slice(0, 19);
}

/** Lists every page of a window, following NextPageUri verbatim; returns the entries and the number of pages. */
export async function listAll(emulator: EmulatorTenant, agent: Agent, token: string, first: string): Promise<{ entries: Array<{ contentId: string; contentUri: string; contentCreated: string; contentType: string }>; pages: number }> {
  const entries = [];
  let pages = 0;
  let next: string | undefined = first;
  while (next) {
    const answer = await callApi(emulator, agent, token, next);
    if (answer.status !== 200) throw new Error(`listing answered ${answer.status}: ${answer.text}`);
    entries.push(...answer.body);
    pages += 1;
    next = answer.headers['nextpageuri'] as string | undefined;
  }
  return { entries, pages };
}
