/**
 * Splunk HTTP Event Collector sink: `splunk-hec://host:port` (https unless `tls=0`; port 8088 by default), or
 * `https://…/services/collector/event?protocol=hec` (`format=hec` in earlier releases).
 * Emits: one HEC event per record to /services/collector/event, several per request (at most `maxRecords`,
 * 500, and `maxBytes`, 1 MiB), one per line: `{"time":…,"host":…,"source":…,"sourcetype":…,"index":…,
 * "event":<record>}` where <record> is the bytes Microsoft sent for the record, unchanged (a record the API
 * pretty-printed across lines is compacted to one, nothing inside its strings changing; see
 * connector/sources/activity-api/content-records.ts). `time` is the record's CreationTime read as UTC (the API writes it
 * without a zone suffix) in epoch seconds, left out when the record has none; `sourcetype` per content type
 * (o365:audit:exchange, …, o365:dlp:all) for raw records, `o365:ocsf` for OCSF events (`format=ocsf`), whatever
 * their content type (`sourcetype=` overrides both), `source` (o365-connector), optional
 * `index` and `host`. The token comes from the variable named by `tokenEnv` (or the file `tokenFile`) as
 * `Authorization: Splunk <token>`.
 * Delivery: at least once. Without `ack=1` a batch is acknowledged when HEC answers `{"code":0}` for each of
 * its requests, which means HEC accepted it, not that it is indexed yet (Splunk's own definition). With
 * `ack=1` (indexer acknowledgement on the token, Splunk Enterprise) requests carry a channel and the batch is
 * acknowledged only when /services/collector/ack reports every ackId indexed; if that does not happen within
 * `ackTimeoutMs` (120000) the batch is rejected and sent again (Splunk may then hold some events twice).
 * Busy (9), internal error (8), unhealthy (18-20), 408, 429, 5xx and dropped connections are retried with
 * backoff; a disabled, missing or invalid token (1-4), an index the token may not use (7), malformed events
 * (5, 6, 12, 13, 15) and channel/ack mismatches (10, 11, 14) are reported with the HEC code and the fix and
 * hold the checkpoint (the pipeline ends the run if they persist).
 * Buffering: one request body at a time, plus the ackIds of the current batch. TLS: `ca` (PEM; replaces the
 * system roots for this sink).
 */
import type { ProxySettings } from '../../http/proxy.ts';
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { ConnectorError } from '../../core/errors.ts';
import { sleep } from '../../http/sleep.ts';
import type { ComponentReporter } from '../../observe/telemetry.ts';
import type { Sink } from '../sink.ts';
import { creationTimeMs, type RawRecord, type SinkBatch, type SinkCallOptions, type SinkPosition } from '../../core/records.ts';
import { count, flag, secretEnv, secretFile, SinkUrl, text, textOr } from '../sink-url.ts';
import { deliver, deliveryParameters, HttpBatchSender, judgeStatus, refuseClearTextCredentials, type HttpAnswer, type HttpTarget } from './batch-sender.ts';
import { ndjson } from '../ndjson.ts';
import type { RecordForm } from '../sink.ts';

interface HecCode { readonly meaning: string; readonly fix?: string; readonly retryable: boolean }

const retry = { retryable: true, fix: 'none needed if it passes: Splunk is catching up, the checkpoint waits and the batch is sent again' } as const;

/** Splunk's documented HEC status codes ("Troubleshoot HTTP Event Collector"). */
export const hecCodes: Readonly<Record<number, HecCode>> = {
  1: { meaning: 'the HEC token is disabled', fix: 'enable the token in Splunk (Settings > Data inputs > HTTP Event Collector)', retryable: false },
  2: { meaning: 'the HEC token is missing', fix: 'set tokenEnv=<VARIABLE> holding the token', retryable: false },
  3: { meaning: 'the Authorization header is invalid', fix: 'check the token value named by tokenEnv (no "Splunk " prefix, no quotes)', retryable: false },
  4: { meaning: 'the HEC token is invalid', fix: 'check the token named by tokenEnv', retryable: false },
  5: { meaning: 'HEC received no data', fix: 'report this as a connector bug', retryable: false },
  6: { meaning: 'HEC rejected the data format', fix: 'check that the URL is the /services/collector/event endpoint', retryable: false },
  7: { meaning: 'the index does not exist or the token may not write to it', fix: 'create the index or allow it on the token, or change index=', retryable: false },
  8: { meaning: 'Splunk had an internal error', ...retry },
  9: { meaning: 'Splunk is busy', ...retry },
  10: { meaning: 'HEC requires a data channel: indexer acknowledgement is on for this token', fix: 'add ack=1 to the sink spec (or turn indexer acknowledgement off on the token)', retryable: false },
  11: { meaning: 'HEC refused the data channel', fix: 'report this as a connector bug', retryable: false },
  12: { meaning: 'an event has no event field', fix: 'report this as a connector bug', retryable: false },
  13: { meaning: 'an event field is blank', fix: 'report this as a connector bug', retryable: false },
  14: { meaning: 'indexer acknowledgement is off for this token', fix: 'remove ack=1 from the sink spec, or turn indexer acknowledgement on for the token', retryable: false },
  15: { meaning: 'HEC could not handle the indexed fields', fix: 'report this as a connector bug', retryable: false },
  16: { meaning: 'query-string authorization is not enabled', fix: 'report this as a connector bug', retryable: false },
  18: { meaning: 'HEC is unhealthy: its queues are full', ...retry },
  19: { meaning: 'HEC is unhealthy: the acknowledgement service is unavailable', ...retry },
  20: { meaning: 'HEC is unhealthy: queues full and acknowledgement service unavailable', ...retry },
};

/** OCSF events are one schema whatever the content type: one sourcetype, so Splunk never parses them as raw records. */
export const ocsfSourcetype = 'o365:ocsf';

const sourcetypes: Readonly<Record<string, string>> = {
  'Audit.AzureActiveDirectory': 'o365:audit:azureactivedirectory',
  'Audit.Exchange': 'o365:audit:exchange',
  'Audit.SharePoint': 'o365:audit:sharepoint',
  'Audit.General': 'o365:audit:general',
  'DLP.All': 'o365:dlp:all',
};

/** Epoch seconds of a record's CreationTime, which carries no zone suffix but is UTC. */
export function hecTime(value: string | undefined): number | undefined {
  const ms = creationTimeMs(value);
  return ms === undefined ? undefined : ms / 1000;
}

interface HecReply { code?: unknown; text?: unknown; ackId?: unknown; 'invalid-event-number'?: unknown; acks?: unknown }

function parseReply(text: string): HecReply {
  try {
    const parsed = JSON.parse(text) as unknown;
    return typeof parsed === 'object' && parsed !== null ? parsed as HecReply : {};
  } catch {
    return {};
  }
}

/** HEC's `{"text","code"}` answer as accepted, or an error carrying `HEC<code>`; plain HTTP judgement otherwise. */
export function judgeHec(name: string, answer: HttpAnswer, recordIds: ReadonlyArray<string | undefined> = []): ConnectorError | undefined {
  const reply = parseReply(answer.text);
  if (answer.status >= 200 && answer.status < 300 && (reply.code === undefined || reply.code === 0)) return undefined;
  if (typeof reply.code !== 'number') return judgeStatus(name, answer);
  const known = hecCodes[reply.code];
  const eventNumber = reply['invalid-event-number'];
  const which = typeof eventNumber === 'number' ? ` at event ${eventNumber}${recordIds[eventNumber] ? ` (record ${recordIds[eventNumber]})` : ''}` : '';
  const meaning = known?.meaning ?? (typeof reply.text === 'string' ? reply.text : 'unknown HEC answer');
  return new ConnectorError(`HEC${reply.code}`, `Splunk HEC ${name}: ${meaning}${which} (HTTP ${answer.status}).`, {
    ...(known?.fix ? { fix: known.fix } : {}),
    retryable: known?.retryable ?? (answer.status === 429 || answer.status >= 500),
  });
}

/** The query parameters of a Splunk HEC sink; a token is required. */
export const hecParameters = (env: NodeJS.ProcessEnv) => z.object({
  tokenEnv: secretEnv(env),
  tokenFile: secretFile(),
  index: text(),
  host: text(),
  source: textOr('o365-connector'),
  sourcetype: text(),
  tls: flag(true),
  ...deliveryParameters(),
  maxRecords: count(500, 1, 100_000),
  maxBytes: count(1024 * 1024, 1024, 512 * 1024 * 1024),
  format: text(),
  ack: flag(),
  ackTimeoutMs: count(120_000, 100, 3_600_000),
}).superRefine((parameters, ctx) => {
  if (!(parameters.tokenEnv ?? parameters.tokenFile)) {
    ctx.addIssue({ code: 'custom', path: ['tokenEnv'], message: 'the HEC token is required', params: { fix: 'export SPLUNK_HEC_TOKEN=... and add ?tokenEnv=SPLUNK_HEC_TOKEN (or tokenFile=<path>)' } });
  }
});

export class SplunkHecSink implements Sink {
  readonly name: string;
  readonly #sender: HttpBatchSender;
  readonly #ackTarget: HttpTarget | undefined;
  readonly #ackTimeoutMs: number;
  /** Every event's envelope but its time; without a sourcetype, the content type's is used. */
  readonly #envelope: { readonly index: string | undefined; readonly host: string | undefined; readonly source: string; readonly sourcetype: string | undefined };

  constructor(spec: string, options: { env?: NodeJS.ProcessEnv; telemetry?: ComponentReporter; proxy?: ProxySettings | undefined; form?: RecordForm } = {}) {
    const url = new SinkUrl(spec);
    const parameters = url.parameters(hecParameters(options.env ?? process.env));
    const token = parameters.tokenEnv ?? parameters.tokenFile!;
    const { authority, origin } = url.httpEndpoint('splunk-hec', 8088, parameters.tls);
    const path = url.url.protocol === 'splunk-hec:' || url.url.pathname === '/' ? '/services/collector/event' : url.url.pathname;
    this.name = `splunk-hec://${authority}`;
    refuseClearTextCredentials(origin, parameters.insecure, this.name, { tokenEnv: parameters.tokenEnv, tokenFile: parameters.tokenFile });
    const channel = parameters.ack ? randomUUID() : undefined;
    const headers = { 'content-type': 'application/json', authorization: `Splunk ${token}`, ...(channel ? { 'x-splunk-request-channel': channel } : {}) };
    this.#sender = new HttpBatchSender(parameters, `${origin}${path}`, headers, { proxy: options.proxy, telemetry: options.telemetry, fallbackCode: 'HEC' });
    // Acknowledgement queries are tiny: no gzip, same pool.
    this.#ackTarget = channel ? { ...this.#sender.target, gzip: false, url: `${origin}/services/collector/ack` } : undefined;
    this.#ackTimeoutMs = parameters.ackTimeoutMs;
    const { index, host, source } = parameters;
    this.#envelope = { index, host, source, sourcetype: parameters.sourcetype ?? (options.form === 'ocsf' ? ocsfSourcetype : undefined) };
  }

  /** An empty request: HEC checks the token (and the channel) before the body, and answers "No data" (code 5) to a valid one. */
  async check(options: SinkCallOptions = {}): Promise<string> {
    await deliver(this.#sender.target, '', (answer) => (parseReply(answer.text).code === 5 ? undefined : judgeHec(this.name, answer) ?? new ConnectorError('HEC_UNEXPECTED', `${this.name}: an empty request was accepted (HTTP ${answer.status}); is this the event endpoint?`, { fix: 'point the sink at the HEC /services/collector/event endpoint' })), options.abortSignal);
    const { index } = this.#envelope;
    return `token accepted${index ? ` (index ${index} is checked by the first batch: HEC checks indexes only with events)` : ''}`;
  }

  /** The HEC event for one record: its envelope as JSON text, the record's own bytes as `event`. */
  event(record: RawRecord, contentType: string): Buffer {
    const time = hecTime(record.creationTime);
    const { host, source, sourcetype, index } = this.#envelope;
    const envelope = JSON.stringify({
      ...(time !== undefined ? { time } : {}),
      ...(host ? { host } : {}),
      source,
      sourcetype: sourcetype ?? sourcetypes[contentType] ?? 'o365:audit',
      ...(index ? { index } : {}),
    });
    // `{…}` becomes `{…,"event":` + record + `}`.
    const head = `${envelope.slice(0, -1)},"event":`;
    const headLength = Buffer.byteLength(head);
    const event = Buffer.allocUnsafe(headLength + record.bytes.length + 1);
    event.write(head, 0, 'utf8');
    event.set(record.bytes, headLength);
    event[event.length - 1] = 0x7d;
    return event;
  }

  async write(batch: SinkBatch, options: { abortSignal?: AbortSignal } = {}): Promise<SinkPosition | undefined> {
    const pending: Array<{ ackId: number; records: number; bytes: number }> = [];
    await this.#sender.write(batch.records.map((record) => this.event(record, batch.contentType)), async (chunk, offset) => {
      const ids = batch.records.slice(offset, offset + chunk.length).map((record) => record.id);
      const body = ndjson(chunk).subarray(0, -1); // events one per line, without a line feed after the last
      const answer = await this.#sender.deliver(body, (a) => judgeHec(this.name, a, ids), options.abortSignal);
      if (!this.#ackTarget) {
        this.#sender.sent(chunk.length, body.length);
        return;
      }
      const ackId = parseReply(answer.text).ackId;
      if (typeof ackId !== 'number') {
        throw new ConnectorError('HEC14', `Splunk HEC ${this.name} returned no ackId: indexer acknowledgement is off for this token`, { fix: hecCodes[14]!.fix! });
      }
      pending.push({ ackId, records: chunk.length, bytes: body.length });
    }, async () => { if (pending.length > 0) await this.#awaitIndexed(pending, options.abortSignal); });
    return undefined;
  }

  /** Polls /services/collector/ack until Splunk reports every ackId of the batch indexed. */
  async #awaitIndexed(pending: Array<{ ackId: number; records: number; bytes: number }>, signal: AbortSignal | undefined): Promise<void> {
    const target = this.#ackTarget!;
    const deadline = Date.now() + this.#ackTimeoutMs;
    let waiting = pending;
    for (let poll = 0; ; poll += 1) {
      const answer = await this.#sender.deliver(JSON.stringify({ acks: waiting.map((p) => p.ackId) }), (a) => judgeHec(this.name, a), signal, target);
      const acks = parseReply(answer.text).acks as Record<string, unknown> | undefined;
      const indexed = waiting.filter((p) => acks?.[String(p.ackId)] === true);
      for (const p of indexed) this.#sender.sent(p.records, p.bytes);
      waiting = waiting.filter((p) => !indexed.includes(p));
      if (waiting.length === 0) return;
      if (Date.now() >= deadline) {
        throw new ConnectorError('HEC_ACK_TIMEOUT', `Splunk HEC ${this.name} did not confirm indexing of ${waiting.reduce((n, p) => n + p.records, 0)} event(s) within ${this.#ackTimeoutMs} ms`, {
          retryable: true, fix: 'none needed if it passes: the batch is sent again; if it persists, check the indexers\' health or raise ackTimeoutMs',
        });
      }
      await sleep(Math.min(5000, 100 * 2 ** poll), signal);
    }
  }

  async close(): Promise<void> {
    await this.#sender.close();
  }
}
