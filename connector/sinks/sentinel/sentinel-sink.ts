/**
 * Microsoft Sentinel sink: Azure Monitor's Logs Ingestion API, `sentinel://<ingestion host>?rule=<dcr-…>&stream=Custom-O365Audit`,
 * or `sentinel` alone, which takes the endpoint, rule and stream from the stack outputs (sentinelEndpoint,
 * sentinelRule, sentinelStream) that `pulumi up` with `sentinelWorkspace` exports.
 * Emits: one row per record into the rule's stream (`POST {endpoint}/dataCollectionRules/{rule}/streams/{stream}
 * ?api-version=2023-01-01`), with the columns of contract/sentinel-stream.ts: TimeGenerated, Id, ContentType,
 * RecordType, Operation, Workload, UserId, ClientIP, OrganizationId and RawData, the record's bytes as Microsoft sent
 * them as one JSON string (see rows.ts); with `format=ocsf`, TimeGenerated, Id, ContentType and OcsfEvent. Rows go
 * as JSON arrays of at most `maxBytes` (1 MB, the API's limit for one call), gzip-compressed unless `gzip=0`.
 * Auth: a bearer token for the cloud's Azure Monitor audience (`https://monitor.azure.com/.default`, `.us`, `.cn`)
 * from the connector's own identity (the outputs' app and credential); the identity needs Monitoring Metrics
 * Publisher on the rule, which the stack assigns. Network: like Microsoft's other endpoints, through the configured
 * proxy and trusting the outputs' caFile beside the system's roots.
 * Delivery: at least once. A batch is acknowledged when every call of it was answered 204. 429 and 503 (honouring
 * Retry-After), other 5xx and dropped connections are retried through the one retry loop, up to `maxAttempts`
 * (throttling without bound), then the batch is rejected as retryable and the pipeline sends it again, from the
 * first call not yet acknowledged. A call whose answer was lost may have been ingested: its rows can then arrive
 * twice (`summarize arg_max(TimeGenerated, *) by Id` reads each record once). 403, 404, 413 and 400 are refusals
 * with the fix, and hold the checkpoint. A record whose row alone is over the limit is set aside: never sent, kept
 * with the reason in the tenant's dead letters (committed with the batch; the other sinks have it), logged with its Id.
 * Health check (`test`, and `run` before the first batch): an empty array posted to the rule's stream, which the
 * service authorizes (token, role on the rule) and routes (rule, stream) before it reads rows: nothing is ingested.
 * Buffering: one call's body at a time.
 */
import { promisify } from 'node:util';
import { gzip as gzipCallback } from 'node:zlib';
import type { Dispatcher } from 'undici';
import { z } from 'zod';
import { clouds } from '../../../contract/clouds.ts';
import { ConfigError, type ConnectorError } from '../../core/errors.ts';
import type { RawRecord, SinkBatch, SinkCallOptions, SinkPosition } from '../../core/records.ts';
import type { TokenSource } from '../../http/exchange.ts';
import { createHttpAgent } from '../../http/http-agent.ts';
import type { ProxySettings } from '../../http/proxy.ts';
import { retry, retryAfterMs, type RetryPolicyOptions } from '../../http/retry.ts';
import type { Logger } from '../../observe/log.ts';
import type { ComponentReporter } from '../../observe/telemetry.ts';
import { requestOnce, type HttpTarget } from '../http/batch-sender.ts';
import type { RecordForm, Sink, SinkIdentity } from '../sink.ts';
import { count, flag, SinkUrl, text } from '../sink-url.ts';
import { judgeIngestion, type IngestionTarget } from './answers.ts';
import { callsOf, rowsBody, sentinelRow } from './rows.ts';

const gzip = promisify(gzipCallback);

/** The Logs Ingestion API's limit for one call, compressed or not. */
export const maxCallBytes = 1024 * 1024;
export const ingestionApiVersion = '2023-01-01';

export const sentinelParameters = z.object({
  rule: text(),
  stream: text(),
  gzip: flag(true),
  maxAttempts: count(5, 1, 100),
  maxBytes: count(maxCallBytes, 1024, maxCallBytes),
});

const backoff: RetryPolicyOptions = { maxAttempts: 5, baseDelayMs: 250, maxDelayMs: 30_000, maxRetryAfterMs: 60_000 };

export interface SentinelSinkOptions {
  readonly identity: SinkIdentity | undefined;
  readonly telemetry?: ComponentReporter | undefined;
  readonly logger?: Logger | undefined;
  readonly proxy?: ProxySettings | undefined;
  readonly form?: RecordForm;
}

/** `sentinel[?…]` filled in from the outputs' destination; a full `sentinel://` spec as it is. */
function fullSpec(spec: string, identity: SinkIdentity): string {
  if (spec !== 'sentinel' && !spec.startsWith('sentinel?')) return spec;
  const destination = identity.sentinel;
  if (!destination) {
    throw new ConfigError('--sink', 'sentinel alone takes its endpoint, rule and stream from the stack outputs, and these have no sentinelEndpoint, sentinelRule and sentinelStream',
      'set sentinelWorkspace on the stack and run pulumi up, then write the outputs file again; or give sentinel://<ingestion host>?rule=<dcr-…>&stream=Custom-O365Audit');
  }
  const query = new URLSearchParams(spec.includes('?') ? spec.slice(spec.indexOf('?') + 1) : '');
  if (!query.has('rule')) query.set('rule', destination.rule);
  if (!query.has('stream')) query.set('stream', destination.stream);
  const endpoint = new URL(destination.endpoint);
  return `sentinel://${endpoint.host}${endpoint.pathname === '/' ? '' : endpoint.pathname}?${query}`;
}

export class SentinelSink implements Sink {
  readonly name: string;
  readonly #target: HttpTarget;
  readonly #where: IngestionTarget;
  readonly #tokens: TokenSource;
  readonly #agent: Dispatcher;
  readonly #maxBytes: number;
  readonly #form: RecordForm;
  readonly #telemetry: ComponentReporter | undefined;
  readonly #logger: Logger | undefined;
  /** Rows of a batch already acknowledged: a batch sent again after a failure resumes after them. */
  readonly #acknowledged = new WeakMap<SinkBatch, number>();

  constructor(spec: string, options: SentinelSinkOptions) {
    const { identity } = options;
    if (!identity) {
      throw new ConfigError('--sink', 'a sentinel sink signs in as the connector\'s own app, and a fleet of many tenants (--tenants) has no single one', 'run the Sentinel sink in a connector of one tenant (--outputs or --stack)');
    }
    const url = new SinkUrl(fullSpec(spec, identity));
    const parameters = url.parameters(sentinelParameters);
    const { rule, stream } = parameters;
    if (rule === undefined || !/^dcr-[0-9a-f]{32}$/i.test(rule)) {
      throw new ConfigError('--sink rule', rule === undefined ? 'a sentinel sink needs the data collection rule' : `"${rule}" is not a rule's immutable id (dcr-<32 hex digits>)`, 'give rule=<the sentinelRule output> (the rule\'s immutable id, not its resource id)');
    }
    if (stream === undefined || !/^Custom-[A-Za-z0-9_]+$/.test(stream)) {
      throw new ConfigError('--sink stream', stream === undefined ? 'a sentinel sink needs the stream' : `"${stream}" is not a custom stream name (Custom-<name>)`, 'give stream=Custom-O365Audit (the sentinelStream output)');
    }
    const { host, port } = url.host(443);
    const authority = `${host.includes(':') ? `[${host}]` : host}${port === 443 ? '' : `:${port}`}`;
    const base = url.url.pathname.replace(/\/+$/, '');
    this.name = `sentinel://${authority}/${rule}/${stream}`;
    const audience = clouds[identity.cloud].monitorAudience;
    this.#where = { host: authority, rule, stream, audience };
    this.#agent = createHttpAgent({ caFile: identity.caFile, proxy: options.proxy, connections: 4 });
    this.#target = {
      url: `https://${authority}${base}/dataCollectionRules/${encodeURIComponent(rule)}/streams/${encodeURIComponent(stream)}?api-version=${ingestionApiVersion}`,
      headers: { 'content-type': 'application/json', ...(parameters.gzip ? { 'content-encoding': 'gzip' } : {}) },
      gzip: parameters.gzip,
      maxAttempts: parameters.maxAttempts,
      agent: this.#agent,
    };
    this.#tokens = identity.tokensFor(audience, this.#agent);
    this.#maxBytes = parameters.maxBytes;
    this.#form = options.form ?? 'raw';
    this.#telemetry = options.telemetry;
    this.#logger = options.logger;
  }

  async check(options: SinkCallOptions = {}): Promise<string> {
    await this.#post(Buffer.from('[]'), options.abortSignal);
    const { audience, rule, stream } = this.#where;
    return `token for ${audience} accepted, Monitoring Metrics Publisher on rule ${rule}, stream ${stream} known (an empty call: nothing ingested)`;
  }

  async write(batch: SinkBatch, options: SinkCallOptions = {}): Promise<SinkPosition | undefined> {
    const done = this.#acknowledged.get(batch) ?? 0;
    const records = batch.records.slice(done);
    const rows = records.map((record) => sentinelRow(record, batch.contentType, this.#form));
    const calls = callsOf(rows, this.#maxBytes, (index) => this.#setAside(records[index]!, batch.contentType, rows[index]!.length, options));
    try {
      for (const call of calls) {
        const body = rowsBody(call.rows);
        await this.#post(body, options.abortSignal);
        this.#acknowledged.set(batch, done + call.end);
        this.#telemetry?.sent(call.rows.length, body.length);
      }
    } catch (error) {
      this.#failed(error as ConnectorError);
      throw error;
    }
    this.#acknowledged.delete(batch);
    return undefined;
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }

  /** One call: its body (gzip-compressed when on) posted until it is accepted or refused for good; a 401 renews the token. */
  async #post(body: Buffer, signal: AbortSignal | undefined): Promise<void> {
    const payload = this.#target.gzip ? await gzip(body) : body;
    await retry(async () => {
      const token = await this.#tokens.getToken({ abortSignal: signal });
      const answer = await requestOnce(this.#target, 'POST', signal, payload, { ...this.#target.headers, authorization: `Bearer ${token}` });
      const error = judgeIngestion(this.#where, answer, retryAfterMs(answer.retryAfter), body.length);
      if (!error) return;
      if (answer.status === 401) this.#tokens.invalidate(token);
      throw error;
    }, { policy: { ...backoff, maxAttempts: this.#target.maxAttempts }, signal, onRetry: ({ error }) => this.#failed(error) });
  }

  #setAside(record: RawRecord, contentType: string, bytes: number, options: SinkCallOptions): void {
    const { id } = record;
    const reason = `its row is ${bytes} bytes, over the ${this.#maxBytes} bytes one call to the Logs Ingestion API may carry`;
    options.setAside?.(record, reason);
    this.#logger?.warn({ component: 'sink', sink: this.name, contentType, id, bytes, limit: this.#maxBytes }, `record set aside to the dead letters (the other sinks have it): ${reason}; the rest of the batch is delivered`);
    this.#telemetry?.error({ stage: 'sending', code: 'SENTINEL_RECORD_TOO_LARGE', message: `record ${id ?? '(no Id)'} of ${contentType} set aside: ${reason}`, discarded: 1 });
  }

  #failed(error: ConnectorError): void {
    this.#telemetry?.error({ stage: 'sending', code: error.code ?? 'SENTINEL', message: error.message, discarded: 0 });
  }
}
