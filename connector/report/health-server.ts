/**
 * `run --listen <host:port>`: Prometheus metrics at `/metrics`, liveness at `/livez` (the process answers: its event
 * loop turns) and readiness at `/readyz` (a token can be had; the run is not stopping). Plain HTTP on the address
 * given: bind it to localhost or a management network.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError } from '../core/errors.ts';
import type { Logger } from '../observe/log.ts';
import type { ConnectorMetrics } from './metrics.ts';

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

export async function startHealthServer(listen: string, options: { metrics: ConnectorMetrics; readiness: () => Promise<Readiness>; logger: Logger }): Promise<HealthServer> {
  const { host, port } = parseListen(listen);
  const server: Server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    const answer = (status: number, type: string, body: string) => {
      response.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
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
    if (path === '/metrics') return answerLater(options.metrics.registry.metrics().then((text) => [200, options.metrics.registry.contentType, text]), 500);
    return answer(404, 'text/plain', 'not found: /metrics, /livez, /readyz\n');
  });
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => reject(new ConfigError('--listen', `cannot listen on ${listen}: ${error.code ?? error.message}`, 'give a free port on an address of this host')));
    server.listen(port, host, () => resolveListen());
  });
  const bound = server.address() as AddressInfo;
  const address = `${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}`;
  options.logger.info({ component: 'health', address }, 'serving /metrics, /livez and /readyz');
  return {
    address,
    close: () => new Promise<void>((resolveClose) => {
      server.close(() => resolveClose());
      server.closeAllConnections();
    }),
  };
}
