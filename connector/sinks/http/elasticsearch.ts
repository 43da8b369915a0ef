/**
 * Elasticsearch sink: `elasticsearch://host:port/index` (https unless `tls=0`; port 9200 by default), or
 * `https://host:port/index?protocol=bulk` (`format=bulk` in earlier releases). The index may be a data stream.
 * Emits: `_bulk` requests (at most `maxRecords`, 1000, and `maxBytes`, 10 MiB) of `create` actions whose
 * document `_id` is the record's `Id` (left out when the record has none: Elasticsearch then picks one),
 * optionally through an ingest `pipeline`; each action line is followed by the document, the bytes Microsoft
 * sent for the record, unchanged (a record the API pretty-printed across lines is compacted to one, nothing
 * inside its strings changing; see connector/sources/activity-api/content-records.ts). `create`, not `index`, on
 * purpose: `create` stores a document only if its id is new, so a record the connector sends twice (after a
 * crash, a retry or a timed-out request that did succeed) is answered 409 version conflict = already there =
 * success, and the stored copy is never rewritten; `index` would overwrite it and bump its version on every
 * re-send, and data streams accept only `create`. Auth: `apiKeyEnv`/`apiKeyFile` (`Authorization: ApiKey`) or
 * `usernameEnv` + `passwordEnv` (Basic).
 * Delivery: effectively exactly once per record Id (idempotent on `_id`). A batch is acknowledged when every
 * item is created or already there. Items that fail with 429 or 5xx (a busy or recovering shard) are sent
 * again, only those, with backoff, up to `maxAttempts` rounds; a 429/5xx or a dropped connection for the whole
 * request is retried with Retry-After; then the batch is rejected as retryable and the pipeline sends it again.
 * An item refused for another reason (a mapping error, a closed index, no privilege) rejects the batch with
 * Elasticsearch's own reason and the record Id, and holds the checkpoint: nothing is skipped silently.
 * Buffering: one request body at a time. TLS: `ca` (PEM; replaces the system roots for this sink).
 */
import type { ProxySettings } from '../../http/proxy.ts';
import { registerSecret } from '../../observe/secret-values.ts';
import { z } from 'zod';
import { ConfigError, ConnectorError, SinkError } from '../../core/errors.ts';
import { sleep } from '../../http/sleep.ts';
import type { ComponentReporter } from '../../observe/telemetry.ts';
import type { Sink } from '../sink.ts';
import type { RawRecord, SinkBatch, SinkCallOptions, SinkPosition } from '../../core/records.ts';
import { count, flag, secretEnv, secretFile, SinkUrl, text } from '../sink-url.ts';
import { deliver, deliveryParameters, HttpBatchSender, judgeStatus, refuseClearTextCredentials } from './batch-sender.ts';
import { ndjson } from '../ndjson.ts';

interface BulkItemResult { status?: number; error?: { type?: string; reason?: string } }
type BulkItem = Record<string, BulkItemResult | undefined>;

/** Elasticsearch's index naming rules, so that a wrong name fails at start, not at the first batch. */
function validIndex(index: string): boolean {
  return index !== '' && index !== '.' && index !== '..' && index === index.toLowerCase() && !/^[-_+]/.test(index)
    && !/[\\/*?"<>| ,#:%]/.test(index) && Buffer.byteLength(index) <= 255;
}

/** The query parameters of an Elasticsearch sink: an API key, or a username and password, or neither. */
export const elasticsearchParameters = (env: NodeJS.ProcessEnv) => z.object({
  apiKeyEnv: secretEnv(env),
  apiKeyFile: secretFile(),
  usernameEnv: secretEnv(env),
  passwordEnv: secretEnv(env),
  pipeline: text(),
  tls: flag(true),
  ...deliveryParameters(60_000),
  maxRecords: count(1000, 1, 100_000),
  maxBytes: count(10 * 1024 * 1024, 1024, 512 * 1024 * 1024),
  format: text(),
}).superRefine((parameters, ctx) => {
  const hasUser = parameters.usernameEnv !== undefined;
  if (hasUser !== (parameters.passwordEnv !== undefined)) {
    ctx.addIssue({ code: 'custom', path: [hasUser ? 'passwordEnv' : 'usernameEnv'], message: 'Basic authentication needs both usernameEnv and passwordEnv', params: { fix: 'give both, or use apiKeyEnv' } });
  } else if ((parameters.apiKeyEnv ?? parameters.apiKeyFile) && hasUser) {
    ctx.addIssue({ code: 'custom', path: ['apiKeyEnv'], message: 'give either an API key or a username and password, not both' });
  }
});

export class ElasticsearchSink implements Sink {
  readonly name: string;
  readonly #sender: HttpBatchSender;
  readonly #origin: string;
  readonly #index: string;

  constructor(spec: string, options: { env?: NodeJS.ProcessEnv; telemetry?: ComponentReporter; proxy?: ProxySettings | undefined } = {}) {
    const url = new SinkUrl(spec);
    const parameters = url.parameters(elasticsearchParameters(options.env ?? process.env));
    let index = url.url.pathname.replace(/^\/+|\/+$/g, '');
    try { index = decodeURIComponent(index); } catch { /* left encoded: validIndex refuses the % */ }
    if (!validIndex(index)) {
      throw new ConfigError('--sink index', `"${index}" is not a valid index name (the URL path must be one lowercase index or data stream name without \\ / * ? " < > | , # : or spaces, not starting with - _ +)`, 'e.g. elasticsearch://es.example:9200/o365-audit');
    }
    const { authority, origin } = url.httpEndpoint('elasticsearch', 9200, parameters.tls);
    refuseClearTextCredentials(origin, parameters.insecure, `elasticsearch://${authority}`, { apiKeyEnv: parameters.apiKeyEnv, apiKeyFile: parameters.apiKeyFile, passwordEnv: parameters.passwordEnv });
    const { usernameEnv: username, passwordEnv: password, pipeline } = parameters;
    const apiKey = parameters.apiKeyEnv ?? parameters.apiKeyFile;
    const basic = username !== undefined ? Buffer.from(`${username}:${password}`).toString('base64') : undefined;
    registerSecret(basic); // an echoed Authorization header shows the encoded form
    const auth = apiKey ? `ApiKey ${apiKey}` : basic !== undefined ? `Basic ${basic}` : undefined;
    const query = new URLSearchParams({ filter_path: 'errors,items.*.status,items.*.error', ...(pipeline ? { pipeline } : {}) });
    this.name = `elasticsearch://${authority}/${index}`;
    this.#index = index;
    this.#origin = origin;
    const headers = { 'content-type': 'application/x-ndjson', ...(auth ? { authorization: auth } : {}) };
    this.#sender = new HttpBatchSender(parameters, `${origin}/_bulk?${query}`, headers, { proxy: options.proxy, telemetry: options.telemetry, fallbackCode: 'ES' });
  }

  /**
   * Asks Elasticsearch whether these credentials may create documents in the index (`_has_privileges`): wrong
   * credentials and a missing privilege fail here, not at the first batch. A cluster without security has no such
   * API: then only reachability is verified.
   */
  async check(options: SinkCallOptions = {}): Promise<string> {
    const target = { ...this.#sender.target, url: `${this.#origin}/_security/user/_has_privileges`, gzip: false, maxAttempts: 1, headers: { ...this.#sender.target.headers, 'content-type': 'application/json' } };
    const body = JSON.stringify({ index: [{ names: [this.#index], privileges: ['create_doc'] }] });
    let unsecured = false;
    let refused = false;
    const answer = await deliver(target, body, (reply) => {
      if (reply.status === 401) return new SinkError('ES_UNAUTHENTICATED', `${this.name}: Elasticsearch did not accept the credentials (HTTP 401)`, { fix: 'check the API key (apiKeyEnv/apiKeyFile) or usernameEnv/passwordEnv' });
      if (reply.status >= 200 && reply.status < 300) return undefined;
      // Security is on (the credentials were taken) but this key may not ask (a restricted API key): it may still write.
      if (reply.status === 403) { refused = true; return undefined; }
      // No security (400/404/500 naming it): nothing to ask; the cluster answered, which is what can be verified.
      if (reply.status < 500 || /security/i.test(reply.text)) { unsecured = true; return undefined; }
      return judgeStatus(this.name, reply);
    }, options.abortSignal);
    if (refused) return `credentials accepted; whether they may create documents in ${this.#index} could not be asked (HTTP 403 to _has_privileges): the first batch tells`;
    if (unsecured) return 'reachable (security is off: no privileges to check)';
    const verdict = JSON.parse(answer.text) as { has_all_requested?: unknown };
    if (verdict.has_all_requested !== true) {
      throw new SinkError('ES_FORBIDDEN', `${this.name}: these credentials may not create documents in ${this.#index}: no create_doc privilege`, { fix: `grant the role of this API key or user the create_doc (or write) privilege on ${this.#index}` });
    }
    return `credentials accepted, may create documents in ${this.#index}`;
  }

  async write(batch: SinkBatch, options: { abortSignal?: AbortSignal } = {}): Promise<SinkPosition | undefined> {
    await this.#sender.write(batch.records.map((record) => this.#item(record)), (chunk, offset) =>
      this.#send(batch.records.slice(offset, offset + chunk.length), chunk, options.abortSignal));
    return undefined;
  }

  /** The action line and the document of one record, as one buffer (the two lines without the last line feed). */
  #item(record: RawRecord): Buffer {
    const action = Buffer.from(`${JSON.stringify({ create: { _index: this.#index, _id: record.id } })}\n`, 'utf8');
    return Buffer.concat([action, record.bytes], action.length + record.bytes.length);
  }

  /** One `_bulk` request, then again with only the items Elasticsearch asked to retry. */
  async #send(records: readonly RawRecord[], lines: readonly Buffer[], signal: AbortSignal | undefined): Promise<void> {
    let pending = records.map((record, i) => ({ record, line: lines[i]! }));
    for (let round = 1; ; round += 1) {
      const body = ndjson(pending.map((p) => p.line));
      const answer = await this.#sender.deliver(body, (a) => judgeStatus(this.name, a), signal);
      let results: BulkItem[] | undefined;
      try {
        results = (JSON.parse(answer.text) as { items?: BulkItem[] }).items;
      } catch {
        // judged below
      }
      if (!Array.isArray(results) || results.length !== pending.length) {
        throw new ConnectorError('ES_BAD_RESPONSE', `${this.name} answered HTTP ${answer.status} without one result per item`, { fix: 'check that the sink URL points at Elasticsearch itself, not at a proxy or another service' });
      }
      const again: typeof pending = [];
      let stored = 0;
      let storedBytes = 0;
      for (const [i, item] of results.entries()) {
        const result = Object.values(item)[0];
        const status = result?.status ?? 500;
        const entry = pending[i]!;
        if ((status >= 200 && status < 300) || status === 409) {
          stored += 1;
          storedBytes += entry.line.length + 1;
        } else if (status === 429 || status >= 500) {
          again.push(entry);
        } else {
          this.#sender.sent(stored, storedBytes);
          throw new ConnectorError(`ES${status}`, `${this.name} refused record ${entry.record.id}: ${[result?.error?.type, result?.error?.reason].filter(Boolean).join(' ') || `status ${status}`}`, {
            fix: status === 401 || status === 403 ? 'give the API key or user the create_doc (or create) privilege on the index' : 'fix the index mapping or template for this field, or send to another index',
          });
        }
      }
      this.#sender.sent(stored, storedBytes);
      if (again.length === 0) return;
      const busy = new ConnectorError('ES429', `${this.name} asked to retry ${again.length} of ${pending.length} item(s) (busy or recovering shards)`, {
        retryable: true, fix: 'none needed if it passes: the checkpoint waits and the items are sent again; if it persists, check the cluster\'s health and write thread pool',
      });
      if (round >= this.#sender.target.maxAttempts) throw busy;
      this.#sender.failed(busy);
      await sleep(Math.floor(Math.random() * Math.min(30_000, 250 * 2 ** round)), signal);
      pending = again;
    }
  }

  async close(): Promise<void> {
    await this.#sender.close();
  }
}
