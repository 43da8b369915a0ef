/**
 * Azure Monitor's Logs Ingestion API as a sender meets it, for the Sentinel sink: `POST
 * /dataCollectionRules/{immutable id}/streams/{stream}?api-version=2023-01-01` with a bearer token for
 * `https://monitor.azure.com` from this stand-in's identity platform. It checks, in the service's order, the API
 * version (400), the token's signature, lifetime and audience (401), the rule (404), the role Monitoring Metrics
 * Publisher on the rule for the token's app (403), the stream (404), the size of the call, compressed and not (413,
 * 1 MB), gzip when `Content-Encoding: gzip` says so, and the JSON; a body that is not an array is answered 204 and
 * ingests nothing, as the real service does. Faults on demand: 429 and 503 with Retry-After, and connections cut
 * before an answer (nothing ingested). What it accepted is kept: the rows as the stream declares them (columns it
 * does not declare are dropped silently, as Azure Monitor drops them).
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { sentinelColumns, sentinelStream } from '../../contract/sentinel-stream.ts';
import { readAccessToken, type HttpAnswer } from './identity.ts';

/** The limit of one call, compressed or not. */
export const maxCallBytes = 1024 * 1024;
const apiVersions = ['2023-01-01', '2021-11-01-preview'];

export interface LogsIngestionFaults {
  /** Every nth call that passed the checks is answered 429 with Retry-After. */
  throttleEvery?: number;
  /** Every nth such call is answered 503 with Retry-After. */
  unavailableEvery?: number;
  /** Every nth such call has its connection cut before any answer (nothing ingested). */
  dropEvery?: number;
  /** Retry-After of 429 and 503, in seconds (default 1). */
  retryAfterSeconds?: number;
}

export interface IngestionCounters {
  calls: number;
  accepted: number;
  rows: number;
  throttled: number;
  unavailable: number;
  dropped: number;
  /** Refusals by HTTP status. */
  refused: Record<string, number>;
  /** Accepted calls that came gzip-compressed. */
  gzipped: number;
  /** The largest accepted call, on the wire and decoded. */
  largestWireBytes: number;
  largestBodyBytes: number;
}

export type IngestionRow = Record<string, unknown>;

const declared = new Set<string>(sentinelColumns.map((column) => column.name));

function ingestionError(status: number, code: string, message: string, headers?: Record<string, string>): HttpAnswer {
  return { status, body: { error: { code, message } }, ...(headers ? { headers } : {}) };
}

export function readBytes(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

export class LogsIngestionStandIn {
  /** The data collection rule's immutable id. */
  readonly rule: string;
  readonly stream = sentinelStream;
  readonly audience = 'https://monitor.azure.com';
  /** `tenantId/appId` of the apps holding Monitoring Metrics Publisher on the rule. */
  readonly publishers = new Set<string>();
  faults: LogsIngestionFaults = {};
  /** The size limit of one call, compressed or not (a test lowers it to meet a 413). */
  limitBytes = maxCallBytes;
  counters: IngestionCounters = LogsIngestionStandIn.#emptyCounters();
  readonly #rows: IngestionRow[] = [];
  readonly #signingKey: string;
  #faultable = 0;

  constructor(seed: number, signingKey: string) {
    this.rule = `dcr-${createHash('sha256').update(`logs-ingestion-rule-${seed}`).digest('hex').slice(0, 32)}`;
    this.#signingKey = signingKey;
  }

  static #emptyCounters(): IngestionCounters {
    return { calls: 0, accepted: 0, rows: 0, throttled: 0, unavailable: 0, dropped: 0, refused: {}, gzipped: 0, largestWireBytes: 0, largestBodyBytes: 0 };
  }

  /** Gives `appId` of `tenantId` the role on the rule (as the stack's role assignment does), or takes it away. */
  grant(tenantId: string, appId: string, granted = true): void {
    const key = `${tenantId.toLowerCase()}/${appId.toLowerCase()}`;
    if (granted) this.publishers.add(key); else this.publishers.delete(key);
  }

  /** The outputs a stack with sentinelWorkspace exports for this endpoint (served at `origin`). */
  outputs(origin: string): { sentinelEndpoint: string; sentinelRule: string; sentinelStream: string } {
    return { sentinelEndpoint: origin, sentinelRule: this.rule, sentinelStream: this.stream };
  }

  /** Every row accepted so far, in order. */
  rows(): IngestionRow[] {
    return [...this.#rows];
  }

  reset(): void {
    this.#rows.length = 0;
    this.counters = LogsIngestionStandIn.#emptyCounters();
    this.#faultable = 0;
    this.faults = {};
    this.limitBytes = maxCallBytes;
  }

  #refuse(answer: HttpAnswer): HttpAnswer {
    this.counters.refused[String(answer.status)] = (this.counters.refused[String(answer.status)] ?? 0) + 1;
    return answer;
  }

  /** One call: its answer, or `drop` when the connection is to be cut without one. */
  handle(method: string, url: URL, headers: IncomingMessage['headers'], body: Buffer, now: Date): HttpAnswer | 'drop' {
    this.counters.calls += 1;
    const path = /^\/dataCollectionRules\/([^/]+)\/streams\/([^/]+)$/.exec(url.pathname);
    if (method !== 'POST' || !path) return this.#refuse(ingestionError(404, 'NotFound', `No route for ${method} ${url.pathname}.`));
    const version = url.searchParams.get('api-version');
    if (!version || !apiVersions.includes(version)) {
      return this.#refuse(ingestionError(400, 'InvalidApiVersion', `The api-version '${version ?? ''}' is invalid. The supported versions are '${apiVersions.join("', '")}'.`));
    }
    const token = /^Bearer (\S+)$/i.exec(headers.authorization ?? '')?.[1];
    const claims = token ? readAccessToken(token, this.#signingKey) : undefined;
    if (!claims) return this.#refuse(ingestionError(401, 'InvalidToken', 'The provided token is not valid.', { 'WWW-Authenticate': 'Bearer' }));
    if (claims.aud !== this.audience) return this.#refuse(ingestionError(401, 'InvalidAudience', `The audience of the token '${claims.aud}' is not valid: it must be '${this.audience}'.`, { 'WWW-Authenticate': 'Bearer' }));
    if (claims.exp <= now.getTime() / 1000) return this.#refuse(ingestionError(401, 'TokenExpired', 'The provided token has expired.', { 'WWW-Authenticate': 'Bearer' }));
    const rule = decodeURIComponent(path[1]!);
    const stream = decodeURIComponent(path[2]!);
    if (rule !== this.rule) return this.#refuse(ingestionError(404, 'NotFound', `Data collection rule with immutable Id '${rule}' not found.`));
    if (!this.publishers.has(`${claims.tid.toLowerCase()}/${claims.appid.toLowerCase()}`)) {
      return this.#refuse(ingestionError(403, 'OperationFailed', `The authentication token provided does not have access to ingest data for the data collection rule with immutable Id '${rule}'.`));
    }
    if (stream !== this.stream) return this.#refuse(ingestionError(404, 'InvalidStream', `Stream '${stream}' is not declared by data collection rule '${rule}'.`));
    if (body.length > this.limitBytes) return this.#refuse(ingestionError(413, 'ContentLengthLimitExceeded', `The request body of ${body.length} bytes is over the limit of ${this.limitBytes} bytes.`));
    const gzipped = /^gzip$/i.test(String(headers['content-encoding'] ?? '').trim());
    let decoded = body;
    if (gzipped) {
      try {
        decoded = gunzipSync(body);
      } catch {
        return this.#refuse(ingestionError(400, 'InvalidContentEncoding', 'The request body is not valid gzip.'));
      }
    }
    if (decoded.length > this.limitBytes) return this.#refuse(ingestionError(413, 'ContentLengthLimitExceeded', `The decompressed request body of ${decoded.length} bytes is over the limit of ${this.limitBytes} bytes.`));
    let parsed: unknown;
    try {
      parsed = JSON.parse(decoded.toString('utf8'));
    } catch {
      return this.#refuse(ingestionError(400, 'InvalidPayload', 'The request body is not valid JSON.'));
    }
    this.#faultable += 1;
    const n = this.#faultable;
    const { throttleEvery, unavailableEvery, dropEvery, retryAfterSeconds = 1 } = this.faults;
    const retryAfter = { 'Retry-After': String(retryAfterSeconds) };
    if (dropEvery && n % dropEvery === 0) {
      this.counters.dropped += 1;
      return 'drop';
    }
    if (throttleEvery && n % throttleEvery === 0) {
      this.counters.throttled += 1;
      return ingestionError(429, 'TooManyRequests', 'The request rate is over the limit of the data collection rule. Retry after the time in Retry-After.', retryAfter);
    }
    if (unavailableEvery && n % unavailableEvery === 0) {
      this.counters.unavailable += 1;
      return ingestionError(503, 'ServiceUnavailable', 'The service is unavailable. Retry after the time in Retry-After.', retryAfter);
    }
    this.counters.accepted += 1;
    if (gzipped) this.counters.gzipped += 1;
    this.counters.largestWireBytes = Math.max(this.counters.largestWireBytes, body.length);
    this.counters.largestBodyBytes = Math.max(this.counters.largestBodyBytes, decoded.length);
    // Anything but an array is accepted and ingests nothing, as the service does.
    if (Array.isArray(parsed)) {
      for (const row of parsed) {
        if (typeof row !== 'object' || row === null || Array.isArray(row)) continue;
        this.#rows.push(Object.fromEntries(Object.entries(row as IngestionRow).filter(([name]) => declared.has(name))));
        this.counters.rows += 1;
      }
    }
    return { status: 204, body: '' };
  }
}
