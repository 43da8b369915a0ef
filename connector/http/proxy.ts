/**
 * The forward proxy for calls to Microsoft: `--proxy <url>` / `O365_PROXY` when given, else `HTTPS_PROXY` /
 * `https_proxy` (the connector's calls are all https), with `NO_PROXY` / `no_proxy` naming hosts reached directly
 * (`*`, `host`, `.domain` or `domain` for it and its subdomains, `host:port`). Credentials come from the proxy URL
 * or from `O365_PROXY_USERNAME` / `O365_PROXY_PASSWORD` (which win); they are never shown: logs, errors and `test`
 * show the proxy as `host:port`. Sinks go direct unless their spec says `proxy=1`.
 */
import { ConfigError } from '../core/errors.ts';
import { registerSecret } from '../observe/secret-values.ts';

export interface ProxySettings {
  /** The proxy's URL without credentials. */
  readonly url: string;
  /** `host:port`: how the proxy is shown. */
  readonly display: string;
  /** `Basic ...` for Proxy-Authorization, when credentials were given. */
  readonly token?: string;
  /** NO_PROXY as given (undici's own matching applies it). */
  readonly noProxy: string;
}

function text(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed ? trimmed : undefined;
}

/** The proxy configured for this process, or undefined for direct connections. */
export function proxySettings(env: NodeJS.ProcessEnv, flag?: string): ProxySettings | undefined {
  const explicit = text(flag) ?? text(env['O365_PROXY']);
  const given = explicit ?? text(env['HTTPS_PROXY']) ?? text(env['https_proxy']);
  if (!given) return undefined;
  const source = explicit ? (text(flag) ? '--proxy' : 'O365_PROXY') : text(env['HTTPS_PROXY']) ? 'HTTPS_PROXY' : 'https_proxy';
  let url: URL;
  try {
    url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(given) ? given : `http://${given}`);
  } catch {
    throw new ConfigError(source, 'is not a proxy URL', 'e.g. http://proxy.example:3128 (credentials: O365_PROXY_USERNAME and O365_PROXY_PASSWORD)');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(source, `proxies over ${url.protocol} are not supported`, 'give an http:// or https:// proxy URL');
  }
  const username = text(env['O365_PROXY_USERNAME']) ?? (url.username ? decodeURIComponent(url.username) : undefined);
  const password = env['O365_PROXY_PASSWORD'] ?? (url.password ? decodeURIComponent(url.password) : undefined);
  url.username = '';
  url.password = '';
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  let token: string | undefined;
  if (username !== undefined) {
    token = `Basic ${Buffer.from(`${username}:${password ?? ''}`).toString('base64')}`;
    registerSecret(password);
    registerSecret(token.slice('Basic '.length));
  }
  return {
    url: url.href, display: `${url.hostname}:${port}`, ...(token ? { token } : {}),
    noProxy: text(env['NO_PROXY']) ?? text(env['no_proxy']) ?? '',
  };
}

/**
 * Whether a call to `url` goes through the proxy: not when NO_PROXY names its host, by the rules undici's proxy agent
 * applies (`*`; a host, matching it and its subdomains, with or without a leading `.` or `*.`; `host:port`).
 */
export function reachedThroughProxy(proxy: ProxySettings | undefined, url: string): boolean {
  if (!proxy) return false;
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return true;
  }
  const host = target.hostname.replace(/^\[(.+)\]$/, '$1').replace(/\.$/, '').toLowerCase();
  const port = Number(target.port) || (target.protocol === 'http:' ? 80 : 443);
  for (const entry of proxy.noProxy.split(/[,\s]/)) {
    if (!entry) continue;
    const withPort = /^\[(.+)\]:(\d+)$/.exec(entry) ?? (entry.split(':').length === 2 ? /^(.+):(\d+)$/.exec(entry) : null);
    const name = (withPort ? withPort[1]! : entry.replace(/^\[(.+)\]$/, '$1')).toLowerCase();
    if (withPort && Number(withPort[2]) !== port) continue;
    if (name === '*') return false;
    const domain = name.replace(/^\*?\./, '');
    if ((!name.startsWith('*') && host === domain) || host.endsWith(`.${domain}`)) return false;
  }
  return true;
}
