import { getCACertificates } from 'node:tls';
import { Agent, EnvHttpProxyAgent, type Dispatcher } from 'undici';
import { maxSettingFileBytes, readSmallFile } from '../core/small-file.ts';
import { ConfigError } from '../core/errors.ts';
import { reachedThroughProxy, type ProxySettings } from './proxy.ts';

export interface HttpAgentOptions {
  /** Extra CA certificates (PEM file) trusted in addition to the system's; verification is never switched off. */
  readonly caFile?: string | undefined;
  readonly connections?: number;
  /** Through this forward proxy (hosts in its NO_PROXY direct). */
  readonly proxy?: ProxySettings | undefined;
}

/**
 * The agents of many tenants: one per CA bundle (the tenants that trust the same share it, and its connections),
 * each made on first use with `options`; `close` closes them all.
 */
export class HttpAgentsByCaFile {
  readonly #options: Omit<HttpAgentOptions, 'caFile'>;
  readonly #agents = new Map<string, Dispatcher>();

  constructor(options: Omit<HttpAgentOptions, 'caFile'> = {}) {
    this.#options = options;
  }

  agentFor(caFile: string | undefined): Dispatcher {
    let agent = this.#agents.get(caFile ?? '');
    if (!agent) this.#agents.set(caFile ?? '', agent = createHttpAgent({ ...this.#options, caFile }));
    return agent;
  }

  async close(): Promise<void> {
    await Promise.all([...this.#agents.values()].map((agent) => agent.close()));
  }
}

/**
 * One undici dispatcher for the identity platform and the API, trusting the default CAs (NODE_EXTRA_CA_CERTS
 * included), through the proxy when one is configured (undici's own proxy agent: CONNECT, then TLS to the host).
 */
export function createHttpAgent(options: HttpAgentOptions = {}): Dispatcher {
  let ca: string[] | undefined;
  if (options.caFile) {
    let extra: string;
    try {
      extra = readSmallFile(options.caFile, maxSettingFileBytes).toString('utf8');
    } catch (error) {
      throw new ConfigError('caFile', `${options.caFile} ${(error as Error).message}`, 'point caFile at a readable PEM file or remove it');
    }
    ca = [...getCACertificates('default'), extra];
  }
  const settings = {
    connections: options.connections ?? 16,
    connectTimeout: 15_000,
    headersTimeout: 60_000,
    bodyTimeout: 120_000,
    keepAliveTimeout: 10_000,
    connect: ca ? { ca } : {},
  };
  return options.proxy ? proxyDispatcher(options.proxy, settings, ca) : new Agent(settings);
}

/** Through `proxy` except for its NO_PROXY hosts; `ca` verifies the hosts behind it (and a proxy spoken to over TLS). */
export function proxyDispatcher(proxy: ProxySettings, settings: Agent.Options, ca: string[] | string | undefined): Dispatcher {
  return new ProxyNamingAgent(proxy, {
    ...settings,
    httpProxy: proxy.url, httpsProxy: proxy.url, noProxy: proxy.noProxy,
    ...(proxy.token ? { token: proxy.token } : {}),
    ...(ca ? { requestTls: { ca }, proxyTls: { ca } } : {}),
  });
}

/** Failures to connect: below TLS and HTTP, before any byte was exchanged. */
const connectFailures = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_CONNECT_TIMEOUT']);

/**
 * undici's proxy agent, whose failures to connect to the proxy say so: a call through the proxy connects only to the
 * proxy, so such a failure is the proxy's, and is marked `unreachableProxy: <host:port>` for transportError to name
 * the proxy (the bare error names the proxy's address beside the target's host, as if they were one).
 */
class ProxyNamingAgent extends EnvHttpProxyAgent {
  readonly #proxy: ProxySettings;

  constructor(proxy: ProxySettings, options: EnvHttpProxyAgent.Options) {
    super(options);
    this.#proxy = proxy;
  }

  override dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    if (!reachedThroughProxy(this.#proxy, String(options.origin ?? ''))) return super.dispatch(options, handler);
    const proxy = this.#proxy.display;
    const mark = (error: unknown) => {
      const code = (error as { code?: unknown } | undefined)?.code;
      if (typeof code === 'string' && connectFailures.has(code)) Object.assign(error as object, { unreachableProxy: proxy });
    };
    const marking = new Proxy(handler, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver) as unknown;
        if ((property === 'onError' || property === 'onResponseError') && typeof value === 'function') {
          return (...args: unknown[]) => {
            mark(args.at(-1));
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        return value;
      },
    });
    return super.dispatch(options, marking);
  }
}
