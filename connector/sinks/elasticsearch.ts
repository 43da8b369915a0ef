/**
 * Elasticsearch sink: `elasticsearch://host:port/index` (https unless `tls=0`), or `https://…/index?format=bulk`.
 * Emits: `_bulk` requests of `create` actions whose document id is the record's `Id`, so a record sent twice
 * is stored once (409 version conflict = already there = success). Auth: `apiKeyEnv` (ApiKey) or
 * `usernameEnv` + `passwordEnv` (Basic).
 * Delivery: effectively exactly once per record Id. Items that fail with 429 or 5xx are sent again (only
 * those items); a 429 or 5xx for the whole request is retried with Retry-After. Items rejected for another
 * reason (mapping errors) reject the batch with Elasticsearch's reason and hold the checkpoint.
 */
import { ConnectorError } from '../errors.ts';
import type { ComponentReporter } from '../status/telemetry.ts';
import type { AuditRecord, Sink, SinkBatch, SinkPosition } from './sink.ts';
import { SinkUrl } from './sink-url.ts';
import { httpTarget, postWithRetry, type HttpTarget } from './http-delivery.ts';

interface BulkItem { create?: { status: number; error?: { type?: string; reason?: string } } }

export class ElasticsearchSink implements Sink {
  readonly name: string;
  readonly #target: HttpTarget;
  readonly #index: string;
  readonly #maxRecords: number;
  readonly #telemetry: ComponentReporter | undefined;

  constructor(spec: string, options: { env?: NodeJS.ProcessEnv; telemetry?: ComponentReporter } = {}) {
    const url = new SinkUrl(spec, options.env ?? process.env, ['apiKeyEnv', 'apiKeyFile', 'usernameEnv', 'passwordEnv', 'tls', 'ca', 'maxRecords', 'timeoutMs', 'maxAttempts', 'format', 'gzip']);
    const index = decodeURIComponent(url.url.pathname.replace(/^\/+|\/+$/g, ''));
    if (!index || index.includes('/') || index !== index.toLowerCase()) {
      throw new ConnectorError('CONFIG_INVALID', '--sink elasticsearch: the path must be one lowercase index name.', { fix: 'e.g. elasticsearch://es.example:9200/o365-audit' });
    }
    const { host, port } = url.host(9200);
    const scheme = url.url.protocol === 'elasticsearch:' ? (url.string('tls') === '0' ? 'http' : 'https') : url.url.protocol.replace(':', '');
    const hostPart = host.includes(':') ? `[${host}]` : host;
    const apiKey = url.secret('apiKey');
    const username = url.string('usernameEnv') ? url.secret('username') : undefined;
    const password = url.string('passwordEnv') ? url.secret('password') : undefined;
    const auth = apiKey ? `ApiKey ${apiKey}` : username !== undefined ? `Basic ${Buffer.from(`${username}:${password ?? ''}`).toString('base64')}` : undefined;
    this.name = `elasticsearch://${hostPart}:${port}/${index}`;
    this.#index = index;
    this.#target = httpTarget(url, `${scheme}://${hostPart}:${port}/_bulk`, { 'content-type': 'application/x-ndjson', ...(auth ? { authorization: auth } : {}) }, 60_000);
    this.#maxRecords = url.number('maxRecords', 1000, 1, 100_000);
    this.#telemetry = options.telemetry;
  }

  async open(): Promise<void> {}

  async write(batch: SinkBatch, options: { abortSignal?: AbortSignal } = {}): Promise<SinkPosition | undefined> {
    for (let offset = 0; offset < batch.records.length; offset += this.#maxRecords) {
      await this.#send(batch.records.slice(offset, offset + this.#maxRecords), options.abortSignal);
    }
    return undefined;
  }

  async #send(records: readonly AuditRecord[], signal: AbortSignal | undefined): Promise<void> {
    let pending = records;
    for (let round = 1; pending.length > 0; round += 1) {
      const body = pending.map((record) => `${JSON.stringify({ create: { _index: this.#index, _id: record.Id } })}\n${JSON.stringify(record)}\n`).join('');
      let items: BulkItem[];
      try {
        const answer = await postWithRetry(this.#target, body, signal);
        if (answer.status >= 300) {
          throw new ConnectorError(`HTTP${answer.status}`, `Elasticsearch ${this.name} refused the bulk request with HTTP ${answer.status}: ${answer.text.slice(0, 200)}`, {
            fix: answer.status === 401 || answer.status === 403 ? 'check the API key (apiKeyEnv) and its index privileges' : 'check the index name and the cluster',
          });
        }
        items = (JSON.parse(answer.text) as { items: BulkItem[] }).items;
      } catch (error) {
        this.#telemetry?.error({ stage: 'sending', code: (error as ConnectorError).code ?? 'ES', message: (error as Error).message, discarded: 0 });
        throw error;
      }
      const retry: AuditRecord[] = [];
      let stored = 0;
      for (const [i, item] of items.entries()) {
        const status = item.create?.status ?? 500;
        if (status < 300 || status === 409) stored += 1;
        else if (status === 429 || status >= 500) retry.push(pending[i]!);
        else {
          throw new ConnectorError(`ES${status}`, `Elasticsearch rejected record ${pending[i]!.Id}: ${item.create?.error?.type ?? ''} ${item.create?.error?.reason ?? ''}`.trim() + '.', { fix: 'fix the index mapping for this field, or send to another index' });
        }
      }
      this.#telemetry?.sent(stored, 0);
      if (retry.length > 0 && round >= this.#target.maxAttempts) {
        throw new ConnectorError('ES429', `Elasticsearch kept rejecting ${retry.length} record(s) as busy.`, { retryable: true });
      }
      if (retry.length > 0) await new Promise((resolve) => setTimeout(resolve, Math.min(30_000, 200 * 2 ** round)));
      pending = retry;
    }
  }

  async close(): Promise<void> {
    await this.#target.agent.close();
  }
}
