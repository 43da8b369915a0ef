/**
 * Splunk HTTP Event Collector sink: `splunk-hec://host:port` (https unless `tls=0`), or `https://…?format=hec`.
 * Emits: one HEC event per record to /services/collector/event: `time` from the record's CreationTime (UTC, in
 * epoch seconds), `sourcetype` per content type (o365:audit:exchange, ..., o365:dlp:all; `sourcetype=` overrides),
 * `source` o365-connector, optional `index` and `host`; token from `tokenEnv`/`tokenFile` as `Authorization:
 * Splunk <token>`.
 * Delivery: at least once. Acknowledged when HEC answers `{"code":0}`. Busy (code 9), internal error (8),
 * unhealthy (18), 429 and 5xx are retried; a disabled, missing or invalid token (1-4) or an unknown index (7)
 * is reported with its HEC code and the fix, and holds the checkpoint until it is corrected.
 */
import { ConnectorError } from '../errors.ts';
import type { ComponentReporter } from '../status/telemetry.ts';
import type { AuditRecord, Sink, SinkBatch, SinkPosition } from './sink.ts';
import { SinkUrl } from './sink-url.ts';
import { httpTarget, postWithRetry, type HttpTarget } from './http-delivery.ts';
import { chunks } from './http.ts';

const hecCodes: Record<number, { meaning: string; fix?: string; retryable: boolean }> = {
  1: { meaning: 'the HEC token is disabled', fix: 'enable the token in Splunk (Settings > Data inputs > HTTP Event Collector)', retryable: false },
  2: { meaning: 'the HEC token is missing', fix: 'set tokenEnv=<VARIABLE> holding the token', retryable: false },
  3: { meaning: 'the Authorization header is invalid', fix: 'check the token value', retryable: false },
  4: { meaning: 'the HEC token is invalid', fix: 'check the token named by tokenEnv', retryable: false },
  5: { meaning: 'HEC received no data', retryable: false },
  6: { meaning: 'HEC rejected the data format', retryable: false },
  7: { meaning: 'the index does not exist or the token may not write to it', fix: 'create the index or allow it on the token, or change index=', retryable: false },
  8: { meaning: 'Splunk had an internal error', retryable: true },
  9: { meaning: 'Splunk is busy', retryable: true },
  10: { meaning: 'HEC requires a data channel (indexer acknowledgement is on for this token)', fix: 'turn off indexer acknowledgement on the token', retryable: false },
  18: { meaning: 'HEC is unhealthy (queues full)', retryable: true },
};

const sourcetypes: Record<string, string> = {
  'Audit.AzureActiveDirectory': 'o365:audit:azureactivedirectory',
  'Audit.Exchange': 'o365:audit:exchange',
  'Audit.SharePoint': 'o365:audit:sharepoint',
  'Audit.General': 'o365:audit:general',
  'DLP.All': 'o365:dlp:all',
};

/** Epoch seconds of a record's CreationTime, which carries no zone suffix but is UTC. */
export function hecTime(record: AuditRecord): number | undefined {
  const value = record['CreationTime'];
  if (typeof value !== 'string') return undefined;
  const ms = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(value) ? value : `${value}Z`);
  return Number.isNaN(ms) ? undefined : ms / 1000;
}

export class SplunkHecSink implements Sink {
  readonly name: string;
  readonly #target: HttpTarget;
  readonly #index: string | undefined;
  readonly #host: string | undefined;
  readonly #sourcetype: string | undefined;
  readonly #maxRecords: number;
  readonly #telemetry: ComponentReporter | undefined;

  constructor(spec: string, options: { env?: NodeJS.ProcessEnv; telemetry?: ComponentReporter } = {}) {
    const url = new SinkUrl(spec, options.env ?? process.env, ['tokenEnv', 'tokenFile', 'index', 'host', 'sourcetype', 'tls', 'ca', 'maxRecords', 'timeoutMs', 'maxAttempts', 'format', 'gzip']);
    const token = url.secret('token');
    if (!token) throw new ConnectorError('CONFIG_INVALID', '--sink tokenEnv: the HEC token is required.', { fix: 'export SPLUNK_HEC_TOKEN=... and add ?tokenEnv=SPLUNK_HEC_TOKEN' });
    const { host, port } = url.host(8088);
    const scheme = url.url.protocol === 'splunk-hec:' ? (url.string('tls') === '0' ? 'http' : 'https') : url.url.protocol.replace(':', '');
    const path = url.url.protocol === 'splunk-hec:' || url.url.pathname === '/' ? '/services/collector/event' : url.url.pathname;
    const hostPart = host.includes(':') ? `[${host}]` : host;
    this.name = `splunk-hec://${hostPart}:${port}`;
    this.#target = httpTarget(url, `${scheme}://${hostPart}:${port}${path}`, { 'content-type': 'application/json', authorization: `Splunk ${token}` });
    this.#index = url.string('index');
    this.#host = url.string('host');
    this.#sourcetype = url.string('sourcetype');
    this.#maxRecords = url.number('maxRecords', 500, 1, 100_000);
    this.#telemetry = options.telemetry;
  }

  async open(): Promise<void> {}

  event(record: AuditRecord, contentType: string): string {
    const time = hecTime(record);
    return JSON.stringify({
      ...(time !== undefined ? { time } : {}),
      ...(this.#host ? { host: this.#host } : {}),
      source: 'o365-connector',
      sourcetype: this.#sourcetype ?? sourcetypes[contentType] ?? 'o365:audit',
      ...(this.#index ? { index: this.#index } : {}),
      event: record,
    });
  }

  async write(batch: SinkBatch, options: { abortSignal?: AbortSignal } = {}): Promise<SinkPosition | undefined> {
    const events = batch.records.map((record) => this.event(record, batch.contentType));
    for (const chunk of chunks(events, this.#maxRecords, 50 * 1024 * 1024)) {
      const body = chunk.join('\n');
      try {
        for (let attempt = 1; ; attempt += 1) {
          const answer = await postWithRetry(this.#target, body, options.abortSignal);
          let code: number | undefined;
          let text = answer.text;
          try { ({ code, text } = JSON.parse(answer.text) as { code?: number; text: string }); } catch { /* not HEC JSON */ }
          if (answer.status < 300 && (code === undefined || code === 0)) break;
          const known = code !== undefined ? hecCodes[code] : undefined;
          const error = new ConnectorError(code !== undefined ? `HEC${code}` : `HTTP${answer.status}`, `Splunk HEC ${this.name}: ${known?.meaning ?? text} (HTTP ${answer.status}).`, {
            ...(known?.fix ? { fix: known.fix } : {}), retryable: known?.retryable ?? false,
          });
          if (!error.retryable || attempt >= this.#target.maxAttempts) throw error;
          await new Promise((resolve) => setTimeout(resolve, Math.min(30_000, 250 * 2 ** attempt)));
        }
      } catch (error) {
        this.#telemetry?.error({ stage: 'sending', code: (error as ConnectorError).code ?? 'HEC', message: (error as Error).message, discarded: 0 });
        throw error;
      }
      this.#telemetry?.sent(chunk.length, Buffer.byteLength(body));
    }
    return undefined;
  }

  async close(): Promise<void> {
    await this.#target.agent.close();
  }
}
