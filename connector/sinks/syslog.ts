/**
 * Syslog sink: `syslog+tcp://host:port` (default port 514) and `syslog+tls://host:port` (default 6514).
 * Emits: one RFC 5424 message per record, framed by RFC 6587 octet counting (so records holding newlines or
 * non-ASCII text arrive intact); the MSG part is the bytes Microsoft sent for the record, unchanged (a record
 * the API pretty-printed across lines is compacted to one, nothing inside its strings changing; see
 * connector/sources/activity-api/content-records.ts), MSGID is the content type, the timestamp is the record's CreationTime
 * read as UTC (the time of sending when it has none), PROCID is our process id, no structured data.
 * Delivery: AT LEAST ONCE, NOT EXACTLY ONCE. TCP syslog has no application acknowledgement, so a batch counts
 * as accepted once its bytes are flushed to the socket and the connection is still healthy; that resolution
 * lets the checkpoint move. Any error rejects the write, so the pipeline re-sends the whole batch on a new
 * connection (the pipeline's backoff is the reconnect backoff). Bytes flushed just before the receiver dies
 * can still be lost inside the network or the receiver, so the sink also keeps the most recent batches
 * (bounded by `replayBytes`, default 4 MiB, and `replaySeconds`, default 10) and sends them again first after
 * any reconnect, right away when the receiver hangs up between batches: the collector may see a few records
 * twice, never miss them. Limits: a receiver that vanishes silently (no reset, e.g. a cable pulled) is only
 * noticed by TCP after minutes, longer than the replay window; and a reset after our own final close looks
 * like a clean close. Only an acknowledging protocol (RELP, HEC, bulk) closes those gaps.
 * Buffering: that bounded replay window and the one batch being written; nothing queues inside the sink.
 * TLS: `ca` (PEM; replaces the system roots for this sink), optional client `cert` + `key` (PEM files),
 * `servername` when the certificate names another host; verification is always on.
 * Parameters: facility (local0), severity (info), appName (o365-connector), hostname (this host),
 * connectTimeoutMs (10000).
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { hostname as localHostname } from 'node:os';
import { z } from 'zod';
import { ConfigError } from '../core/errors.ts';
import type { Logger } from '../observe/log.ts';
import type { ComponentReporter } from '../observe/telemetry.ts';
import type { Sink } from './sink.ts';
import { creationTimeMs, type RawRecord, type SinkBatch, type SinkPosition } from '../core/records.ts';
import { choice, count, fileText, refused, SinkUrl, text, textOr } from './sink-url.ts';
import { sinkTransportError } from '../http/transport-errors.ts';
import { retry, type RetryPolicyOptions } from '../http/retry.ts';

const facilities = ['kern', 'user', 'mail', 'daemon', 'auth', 'syslog', 'lpr', 'news', 'uucp', 'cron', 'authpriv', 'ftp', 'ntp', 'security', 'console', 'solaris-cron', 'local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7'] as const;
const severities = ['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug'] as const;

/** Reconnecting after the receiver hung up between writes: 20 tries, 200 ms apart at first, then up to 5 s. */
const repairPolicy: RetryPolicyOptions = { maxAttempts: 20, baseDelayMs: 200, maxDelayMs: 5000, jitter: 'none' };

const tlsOnly = (name: string) => refused('only for syslog+tls://', `use syslog+tls:// or remove ${name}=`);

/** The query parameters of a syslog sink; TLS files only for syslog+tls://, a client certificate with its key. */
export const syslogParameters = (secure: boolean) => z.object({
  ca: secure ? fileText() : tlsOnly('ca'),
  cert: secure ? fileText() : tlsOnly('cert'),
  key: secure ? fileText() : tlsOnly('key'),
  servername: text(),
  facility: choice(facilities, 'local0'),
  severity: choice(severities, 'info'),
  appName: textOr('o365-connector'),
  hostname: textOr(localHostname()),
  replayBytes: count(4 * 1024 * 1024, 0, 1024 * 1024 * 1024),
  replaySeconds: count(10, 0, 3600),
  connectTimeoutMs: count(10_000, 100, 600_000),
}).superRefine((parameters, ctx) => {
  if ((parameters.cert === undefined) !== (parameters.key === undefined)) {
    ctx.addIssue({ code: 'custom', path: [parameters.cert === undefined ? 'cert' : 'key'], message: 'a client certificate needs both cert= and key=', params: { fix: 'give both files, or neither' } });
  }
});

/** PRINTUSASCII without spaces, at most `max` characters, or the NILVALUE. */
function headerField(value: string, max: number): string {
  const clean = value.replace(/[^\x21-\x7e]/g, '').slice(0, max);
  return clean === '' ? '-' : clean;
}

function timestamp(record: RawRecord): string {
  const ms = creationTimeMs(record.creationTime);
  return (ms === undefined ? new Date() : new Date(ms)).toISOString();
}

export interface SyslogFormat {
  readonly facility: number;
  readonly severity: number;
  readonly hostname: string;
  readonly appName: string;
}

/** One octet-counted RFC 5424 frame for one record: `<length> <header> <the record's bytes>`. */
export function syslogFrame(record: RawRecord, contentType: string, format: SyslogFormat): Buffer {
  const pri = format.facility * 8 + format.severity;
  // The header is printable ASCII (headerField), so its length in bytes is its length in characters.
  const header = `<${pri}>1 ${timestamp(record)} ${headerField(format.hostname, 255)} ${headerField(format.appName, 48)} ${process.pid} ${headerField(contentType, 32)} - `;
  const length = header.length + record.bytes.length;
  const prefix = `${length} ${header}`;
  const frame = Buffer.allocUnsafe(prefix.length + record.bytes.length);
  frame.write(prefix, 0, 'latin1');
  frame.set(record.bytes, prefix.length);
  return frame;
}

export class SyslogSink implements Sink {
  readonly name: string;
  readonly #target: { host: string; port: number };
  readonly #tls: { ca?: string; cert?: string; key?: string; servername?: string } | undefined;
  readonly #format: SyslogFormat;
  readonly #telemetry: ComponentReporter | undefined;
  readonly #logger: Logger | undefined;
  readonly #limits: { readonly replayBytes: number; readonly replaySeconds: number; readonly connectTimeoutMs: number };
  #socket: Socket | undefined;
  #broken = false;
  #closing = false;
  /** A reconnect-and-replay started because the receiver hung up between writes. */
  #repair: Promise<void> | undefined;
  #recent: Array<{ frames: Buffer; at: number; records: number }> = [];
  #recentBytes = 0;
  #connections = 0;

  constructor(spec: string, options: { telemetry?: ComponentReporter; logger?: Logger } = {}) {
    const url = new SinkUrl(spec);
    const secure = url.url.protocol === 'syslog+tls:';
    if (!secure && url.url.protocol !== 'syslog+tcp:') throw new ConfigError('--sink', `unknown syslog scheme ${url.url.protocol}`, 'use syslog+tcp:// or syslog+tls://');
    this.#target = url.host(secure ? 6514 : 514);
    this.name = url.display;
    const { ca, cert, key, servername, facility, severity, hostname, appName, ...limits } = url.parameters(syslogParameters(secure));
    this.#tls = secure ? { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}), ...(servername ? { servername } : {}) } : undefined;
    this.#format = {
      facility: facilities.indexOf(facility),
      severity: severities.indexOf(severity),
      hostname,
      appName,
    };
    this.#limits = limits;
    this.#telemetry = options.telemetry;
    this.#logger = options.logger;
  }

  async check(): Promise<string> {
    let socket: Socket;
    try {
      socket = await this.#connect();
    } catch (cause) {
      throw sinkTransportError(cause, this.name);
    }
    socket.end();
    socket.destroy();
    return this.#tls ? 'reachable, TLS certificate verified' : 'reachable';
  }

  #connect(): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const { host, port } = this.#target;
      const socket: Socket = this.#tls
        ? tlsConnect({ host, port, ...this.#tls, ...(this.#tls.servername || !/^[\d.:]+$/.test(host) ? { servername: this.#tls.servername ?? host } : {}) })
        : netConnect({ host, port });
      const { connectTimeoutMs } = this.#limits;
      const timer = setTimeout(() => socket.destroy(Object.assign(new Error(`no connection after ${connectTimeoutMs} ms`), { code: 'ETIMEDOUT' })), connectTimeoutMs);
      const fail = (error: Error) => { clearTimeout(timer); reject(error); };
      socket.once('error', fail);
      socket.once(this.#tls ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        socket.off('error', fail);
        socket.setKeepAlive(true, 30_000);
        socket.setNoDelay(true);
        socket.on('error', (error) => {
          this.#broken = true;
          this.#logger?.warn({ component: 'sink', sink: this.name, err: error.message }, 'syslog connection failed');
        });
        socket.on('close', (hadError) => {
          this.#broken = true;
          // The receiver hung up: what it had not read yet may be lost, so reconnect and replay right away
          // instead of waiting for the next batch (there may be none).
          if ((hadError || !this.#closing) && socket === this.#socket && this.#recent.length > 0) this.#startRepair();
        });
        // The receiver never sends anything on plain syslog; reading keeps 'close' prompt when it hangs up.
        socket.resume();
        resolve(socket);
      });
    });
  }

  async #ensureConnection(): Promise<Socket> {
    if (this.#socket && !this.#broken && !this.#socket.destroyed) return this.#socket;
    // Any connection after the first replays, even when earlier reconnect attempts failed in between.
    const reconnect = this.#connections > 0;
    this.#socket?.destroy();
    this.#socket = undefined;
    this.#broken = false;
    const socket = await this.#connect();
    this.#connections += 1;
    this.#socket = socket;
    if (reconnect) {
      const now = Date.now();
      const replay = this.#recent.filter((entry) => now - entry.at <= this.#limits.replaySeconds * 1000);
      if (replay.length > 0) {
        const records = replay.reduce((n, entry) => n + entry.records, 0);
        this.#logger?.warn({ component: 'sink', sink: this.name, records }, 'reconnected: sending the most recent records again, in case the old connection lost them');
        await this.#send(socket, Buffer.concat(replay.map((entry) => entry.frames)));
      }
      // The replayed records are as much in flight on the new connection as fresh ones: keep them for the
      // next replay, aged from now.
      this.#recent = replay.map((entry) => ({ ...entry, at: now }));
      this.#recentBytes = replay.reduce((n, entry) => n + entry.frames.length, 0);
    }
    return socket;
  }

  #startRepair(): void {
    if (this.#repair) return;
    this.#repair = retry(() => this.#ensureConnection(), { policy: repairPolicy, judge: () => ({ retry: true }) })
      .then(() => {}, () => {})
      .finally(() => { this.#repair = undefined; });
  }

  #send(socket: Socket, bytes: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      socket.write(bytes, (error) => {
        if (error || this.#broken) reject(error ?? new Error('connection closed'));
        else resolve();
      });
    });
  }

  async write(batch: SinkBatch): Promise<SinkPosition | undefined> {
    if (batch.records.length === 0) return undefined;
    const frames = Buffer.concat(batch.records.map((record) => syslogFrame(record, batch.contentType, this.#format)));
    if (this.#repair) await this.#repair;
    try {
      const socket = await this.#ensureConnection();
      await this.#send(socket, frames);
    } catch (cause) {
      this.#broken = true;
      const error = sinkTransportError(cause, this.name);
      this.#telemetry?.error({ stage: 'sending', code: error.code, message: error.message, discarded: 0 });
      throw error;
    }
    this.#remember(frames, batch.records.length);
    this.#telemetry?.sent(batch.records.length, frames.length);
    return undefined;
  }

  #remember(frames: Buffer, records: number): void {
    if (this.#limits.replayBytes === 0) return;
    this.#recent.push({ frames, at: Date.now(), records });
    this.#recentBytes += frames.length;
    const now = Date.now();
    while (this.#recent.length > 0 && (this.#recentBytes > this.#limits.replayBytes || now - this.#recent[0]!.at > this.#limits.replaySeconds * 1000)) {
      this.#recentBytes -= this.#recent.shift()!.frames.length;
    }
  }

  /** Connections opened so far (for tests and status). */
  get connections(): number {
    return this.#connections;
  }

  async close(): Promise<void> {
    // A clean close is the receiver reading to the end: when it instead resets, replay the recent records
    // on a new connection and close that one, a few times at most.
    for (let attempt = 0; attempt < 5; attempt += 1) {
      if (this.#repair) await this.#repair;
      const socket = this.#socket;
      if (!socket || socket.destroyed) return;
      this.#closing = true;
      const clean = await new Promise<boolean>((resolve) => {
        let failed = false;
        socket.once('error', () => { failed = true; });
        socket.once('close', (hadError) => resolve(!hadError && !failed));
        socket.end();
        setTimeout(() => { socket.destroy(); resolve(true); }, 5000).unref();
      });
      this.#closing = false;
      if (clean || this.#recent.length === 0) {
        this.#socket = undefined;
        return;
      }
      this.#broken = true;
      await this.#ensureConnection().catch(() => {});
    }
    this.#socket?.destroy();
    this.#socket = undefined;
  }
}
