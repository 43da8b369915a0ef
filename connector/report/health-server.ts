/**
 * `run --listen <host:port>`: the status page at `/` (and `/tenants/<id>`), Prometheus metrics at `/metrics`,
 * liveness at `/livez` (the process answers: its event loop turns) and readiness at `/readyz` (a token can be had;
 * the run is not stopping). Plain HTTP on the address given: bind it to localhost or a management network. With a
 * token (`--listen-token-env`), every path but `/livez` and `/readyz` asks for it. Read-only: GET and HEAD only.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError } from '../core/errors.ts';
import type { Logger } from '../observe/log.ts';
import { carriesToken, listenChallenges } from './listen-token.ts';
import type { ConnectorMetrics } from './metrics.ts';
import { pageQueryOf } from './status-page/fleet-page.ts';
import type { StatusPageSource } from './status-page/page-source.ts';
import { renderFleetPage, renderTenantPage } from './status-page/render.ts';

export interface Readiness {
  readonly ready: boolean;
  /** Why not, in words (one per line on /readyz). */
  readonly reasons: readonly string[];
}

export interface HealthServer {
  /** `host:port` actually bound (the port is chosen when 0 was given). */
  readonly address: string;
  close(): Promise<void>;
}

/** `host:port`, `[v6]:port` or `:port` (all interfaces). */
export function parseListen(value: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value.trim());
  const port = match ? Number(match[3]) : Number.NaN;
  if (!match || port > 65_535) throw new ConfigError('--listen', `"${value}" is not host:port`, 'e.g. --listen 127.0.0.1:9464 (or :9464 for every interface)');
  return { host: match[1] ?? (match[2] || '0.0.0.0'), port };
}

export interface HealthServerOptions {
  readonly metrics: ConnectorMetrics;
  readonly readiness: () => Promise<Readiness>;
  readonly logger: Logger;
  /** The status page's figures; without it `/` is not served. */
  readonly page?: StatusPageSource | undefined;
  /** `--listen-token-env`: the token every path but /livez and /readyz asks for. */
  readonly token?: string | undefined;
}

/** The page loads nothing from anywhere (no script, no external asset): the browser is told to refuse it too. */
const pageHeaders = {
  'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer',
};

/** The tenant id of a `/tenants/<id>` path ('' when it is not a valid escape: no tenant has that id). */
function tenantIdOf(escaped: string): string {
  try {
    return decodeURIComponent(escaped);
  } catch {
    return '';
  }
}

export async function startHealthServer(listen: string, options: HealthServerOptions): Promise<HealthServer> {
  const { host, port } = parseListen(listen);
  const server: Server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const path = url.pathname;
    const answer = (status: number, type: string, body: string, headers: Record<string, string | string[]> = {}) => {
      response.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', ...headers });
      response.end(body);
    };
    /** An answer still being made; `failed` is the status when making it fails. */
    const answerLater = (made: Promise<Parameters<typeof answer>>, failed: number) => {
      made.then((args) => answer(...args), (error: unknown) => answer(failed, 'text/plain', `${String((error as Error).message ?? error)}\n`));
    };
    if (request.method !== 'GET' && request.method !== 'HEAD') return answer(405, 'text/plain', 'GET only\n');
    if (path === '/livez') return answer(200, 'text/plain', 'ok\n');
    if (path === '/readyz') {
      return answerLater(options.readiness().then((readiness) => [readiness.ready ? 200 : 503, 'text/plain', readiness.ready ? 'ready\n' : `${readiness.reasons.join('\n')}\n`]), 503);
    }
    if (options.token !== undefined && !carriesToken(request.headers, options.token)) {
      return answer(401, 'text/plain', 'unauthorized: send the token of --listen-token-env as "Authorization: Bearer <token>" (or as the password of Basic authentication)\n', { 'www-authenticate': listenChallenges });
    }
    if (path === '/metrics') return answerLater(options.metrics.registry.metrics().then((text) => [200, options.metrics.registry.contentType, text]), 500);
    const page = options.page;
    const tenant = /^\/tenants\/([^/]+)$/.exec(path);
    if (page && (path === '/' || tenant)) {
      return answerLater(page.view().then((view): Parameters<typeof answer> => {
        if (!view) return [503, 'text/plain', 'the state is not open yet: try again in a moment\n'];
        const text = tenant ? renderTenantPage(view, tenantIdOf(tenant[1]!)) : renderFleetPage(view, pageQueryOf(url.searchParams));
        return text === undefined ? [404, 'text/plain', 'no such tenant in this fleet\n'] : [200, 'text/html; charset=utf-8', text, pageHeaders];
      }), 500);
    }
    return answer(404, 'text/plain', `not found: ${page ? '/, /tenants/<id>, ' : ''}/metrics, /livez, /readyz\n`);
  });
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => reject(new ConfigError('--listen', `cannot listen on ${listen}: ${error.code ?? error.message}`, 'give a free port on an address of this host')));
    server.listen(port, host, () => resolveListen());
  });
  const bound = server.address() as AddressInfo;
  const address = `${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}`;
  options.logger.info({ component: 'health', address, tokenRequired: options.token !== undefined }, `serving ${options.page ? 'the status page at /, ' : ''}/metrics, /livez and /readyz`);
  return {
    address,
    close: () => new Promise<void>((resolveClose) => {
      server.close(() => resolveClose());
      server.closeAllConnections();
    }),
  };
}
