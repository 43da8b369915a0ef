/**
 * One POST with the retries every HTTP-based sink needs: 429 and 5xx (honouring Retry-After), refused and
 * reset connections. Bodies are always consumed. After bounded attempts the error is thrown as retryable, so
 * the pipeline holds the checkpoint and sends the same batch again later.
 */
import { gzipSync } from 'node:zlib';
import { Agent, request } from 'undici';
import { ConnectorError } from '../errors.ts';
import { retryAfterMs, sleep } from '../api/retry-policy.ts';
import type { SinkUrl } from './sink-url.ts';

export interface HttpTarget {
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly gzip: boolean;
  readonly timeoutMs: number;
  readonly maxAttempts: number;
  readonly agent: Agent;
}

export interface HttpAnswer {
  readonly status: number;
  readonly text: string;
}

export function createSinkAgent(ca: string | undefined): Agent {
  return new Agent({ connections: 4, keepAliveTimeout: 10_000, ...(ca ? { connect: { ca } } : {}) });
}

/** The parameters every HTTP-based sink shares: `gzip`, `timeoutMs`, `maxAttempts`, `ca`. */
export function httpTarget(spec: SinkUrl, endpoint: string, headers: Record<string, string>, defaultTimeoutMs = 30_000): HttpTarget {
  return {
    url: endpoint,
    headers,
    gzip: spec.flag('gzip'),
    timeoutMs: spec.number('timeoutMs', defaultTimeoutMs, 100, 600_000),
    maxAttempts: spec.number('maxAttempts', 5, 1, 100),
    agent: createSinkAgent(spec.file('ca')),
  };
}

/** Sends `body`; resolves with any answer the caller must interpret (2xx and 4xx), retries the transient ones. */
export async function postWithRetry(target: HttpTarget, body: string, signal?: AbortSignal): Promise<HttpAnswer> {
  const payload = target.gzip ? gzipSync(body) : Buffer.from(body, 'utf8');
  const headers = { ...target.headers, ...(target.gzip ? { 'content-encoding': 'gzip' } : {}) };
  let lastError: ConnectorError | undefined;
  for (let attempt = 1; attempt <= target.maxAttempts; attempt += 1) {
    let waitMs = Math.min(30_000, 250 * 2 ** (attempt - 1)) * Math.random();
    try {
      const response = await request(target.url, {
        method: 'POST', dispatcher: target.agent, headers, body: payload,
        headersTimeout: target.timeoutMs, bodyTimeout: target.timeoutMs, ...(signal ? { signal } : {}),
      });
      const text = await response.body.text();
      if (response.statusCode === 429 || response.statusCode >= 500) {
        lastError = new ConnectorError(`HTTP${response.statusCode}`, `${new URL(target.url).host} answered HTTP ${response.statusCode}: ${text.slice(0, 200)}`, { retryable: true });
        waitMs = retryAfterMs(response.headers['retry-after']) ?? waitMs;
      } else {
        return { status: response.statusCode, text };
      }
    } catch (error) {
      if (signal?.aborted) throw error;
      const code = (error as { code?: string }).code ?? 'ECONNRESET';
      lastError = new ConnectorError(code, `cannot deliver to ${new URL(target.url).host}: ${(error as Error).message}`, { retryable: !/CERT|UNABLE_TO|SELF_SIGNED|ERR_TLS/.test(code), fix: 'check that the collector is up and, for https, that ca= holds its CA' });
    }
    if (attempt < target.maxAttempts) await sleep(Math.min(waitMs, 60_000), signal);
  }
  throw lastError!;
}
