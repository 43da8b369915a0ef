/**
 * Syslog sink: `syslog+tcp://host:port` and `syslog+tls://host:port`.
 * Emits: one RFC 5424 message per record, framed by RFC 6587 octet counting (so records holding newlines or
 * non-ASCII text arrive intact); the MSG part is the record as JSON, MSGID is the content type, the timestamp
 * is the record's CreationTime (UTC).
 * Delivery: at least once. Plain syslog has no application acknowledgement: a batch is acknowledged once its
 * bytes are handed to the connection and the connection is healthy. Because bytes handed over just before a
 * receiver dies can still be lost, the sink keeps the most recent batches (bounded by `replayBytes`, default
 * 4 MiB, and `replaySeconds`, default 10) and sends them again first after an unexpected reconnect: the
 * receiver may see a few records twice, never lose them. Writes that fail are rejected, so the pipeline
 * retries the same batch after a reconnect with backoff. Limit: if the receiver dies while the connector is
 * shutting down, after the last batch, TCP cannot tell (a reset after our FIN looks like a clean close) and the
 * last replay window can be lost; only an acknowledging protocol (RELP) would close that gap.
 * Buffering: only that bounded replay window. TLS: `ca`, `cert`, `key` files; verification always on.
 * Parameters: facility (local0), severity (info), appName (o365-connector), hostname (this host), servername.
 */
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { hostname as localHostname } from 'node:os';
import { ConnectorError } from '../errors.ts';
import type { Logger } from '../status/log.ts';
import type { ComponentReporter } from '../status/telemetry.ts';
import type { AuditRecord, Sink, SinkBatch, SinkPosition } from './sink.ts';
import { SinkUrl } from './sink-url.ts';

const facilities = ['kern', 'user', 'mail', 'daemon', 'auth', 'syslog', 'lpr', 'news', 'uucp', 'cron', 'authpriv', 'ftp', 'ntp', 'security', 'console', 'solaris-cron', 'local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7'] as const;
const severities = ['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug'] as const;

/** PRINTUSASCII without spaces, at most `max` characters, or the NILVALUE. */
function headerField(value: string, max: number): string {
  const clean = value.replace(/[^\x21-\x7e]/g, '').slice(0, max);
  return clean === '' ? '-' : clean;
}

function timestamp(record: AuditRecord): string {
  const creation = typeof record['CreationTime'] === 'string' ? record['CreationTime'] : undefined;
  const parsed = creation ? new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(creation) ? creation : `${creation}Z`) : undefined;
  return (parsed && !Number.isNaN(parsed.getTime()) ? parsed : new Date()).toISOString();
}

export interface SyslogFormat {
  readonly facility: number;
  readonly severity: number;
  readonly hostname: string;
  readonly appName: string;
}

/** One octet-counted RFC 5424 frame for one record. */
export function syslogFrame(record: AuditRecord, contentType: string, format: SyslogFormat): Buffer {
  const pri = format.facility * 8 + format.severity;
  const message = `<${pri}>1 ${timestamp(record)} ${headerField(format.hostname, 255)} ${headerField(format.appName, 48)} ${process.pid} ${headerField(contentType, 32)} - ${JSON.stringify(record)}`;
  const body = Buffer.from(message, 'utf8');
  return Buffer.concat([Buffer.from(`${body.length} `, 'ascii'), body]);
}

export class SyslogSink implements Sink {
  readonly name: string;
  readonly #target: { host: string; port: number };
  readonly #tls: { ca?: string; cert?: string; key?: string; servername?: string } | undefined;
  readonly #format: SyslogFormat;
  readonly #telemetry: ComponentReporter | undefined;
  readonly #logger: Logger | undefined;
  readonly #replayBytes: number;
  readonly #replayMs: number;
  readonly #connectTimeoutMs: number;
  #socket: Socket | undefined;
  #broken = false;
  #closing = false;
  /** A reconnect-and-replay started because the receiver hung up between writes. */
  #repair: Promise<void> | undefined;
  #recent: Array<{ frames: Buffer; at: number; records: number }> = [];
  #recentBytes = 0;
  #connections = 0;

  constructor(spec: string, options: { env?: NodeJS.ProcessEnv; telemetry?: ComponentReporter; logger?: Logger } = {}) {
    const url = new SinkUrl(spec, options.env ?? process.env, ['ca', 'cert', 'key', 'servername', 'facility', 'severity', 'appName', 'hostname', 'replayBytes', 'replaySeconds', 'connectTimeoutMs']);
    const secure = url.url.protocol === 'syslog+tls:';
    if (!secure && url.url.protocol !== 'syslog+tcp:') throw new ConnectorError('CONFIG_INVALID', `--sink: unknown syslog scheme ${url.url.protocol}`, { fix: 'use syslog+tcp:// or syslog+tls://' });
    this.#target = url.host(secure ? 6514 : 514);
    this.name = url.display;
    if (secure) {
      const ca = url.file('ca');
      const cert = url.file('cert');
      const key = url.file('key');
      const servername = url.string('servername');
      if ((cert === undefined) !== (key === undefined)) throw new ConnectorError('CONFIG_INVALID', '--sink cert/key: give both the client certificate and its key, or neither.');
      this.#tls = { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}), ...(servername ? { servername } : {}) };
    } else {
      for (const name of ['ca', 'cert', 'key']) {
        if (url.string(name)) throw new ConnectorError('CONFIG_INVALID', `--sink ${name}: only for syslog+tls://.`);
      }
    }
    this.#format = {
      facility: facilities.indexOf(url.oneOf('facility', facilities, 'local0')),
      severity: severities.indexOf(url.oneOf('severity', severities, 'info')),
      hostname: url.string('hostname') ?? localHostname(),
      appName: url.string('appName') ?? 'o365-connector',
    };
    this.#replayBytes = url.number('replayBytes', 4 * 1024 * 1024, 0, 1024 * 1024 * 1024);
    this.#replayMs = url.number('replaySeconds', 10, 0, 3600) * 1000;
    this.#connectTimeoutMs = url.number('connectTimeoutMs', 10_000, 100, 600_000);
    this.#telemetry = options.telemetry;
    this.#logger = options.logger;
  }

  async open(): Promise<void> {}

  #connect(): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const { host, port } = this.#target;
      const socket: Socket = this.#tls
        ? tlsConnect({ host, port, ...this.#tls, ...(this.#tls.servername || !/^[\d.:]+$/.test(host) ? { servername: this.#tls.servername ?? host } : {}) })
        : netConnect({ host, port });
      const timer = setTimeout(() => socket.destroy(new Error(`connect timeout after ${this.#connectTimeoutMs} ms`)), this.#connectTimeoutMs);
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
    const reconnect = this.#socket !== undefined;
    this.#socket?.destroy();
    this.#socket = undefined;
    this.#broken = false;
    const socket = await this.#connect();
    this.#connections += 1;
    this.#socket = socket;
    if (reconnect) {
      const now = Date.now();
      const replay = this.#recent.filter((entry) => now - entry.at <= this.#replayMs);
      if (replay.length > 0) {
        const records = replay.reduce((n, entry) => n + entry.records, 0);
        this.#logger?.warn({ component: 'sink', sink: this.name, records }, 'reconnected: sending the most recent records again, in case the old connection lost them');
        await this.#send(socket, Buffer.concat(replay.map((entry) => entry.frames)));
      }
      this.#recent = [];
      this.#recentBytes = 0;
    }
    return socket;
  }

  #startRepair(): void {
    if (this.#repair) return;
    this.#repair = (async () => {
      for (let attempt = 1; attempt <= 20; attempt += 1) {
        try {
          await this.#ensureConnection();
          return;
        } catch {
          await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 100 * 2 ** attempt)));
        }
      }
    })().finally(() => { this.#repair = undefined; });
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
    } catch (error) {
      this.#broken = true;
      const code = (error as NodeJS.ErrnoException).code ?? 'ESYSLOG';
      this.#telemetry?.error({ stage: 'sending', code, message: (error as Error).message, discarded: 0 });
      throw new ConnectorError(code, `syslog ${this.name}: ${(error as Error).message}.`, { fix: 'check that the collector listens and, for TLS, that ca= holds its CA', retryable: true });
    }
    this.#remember(frames, batch.records.length);
    this.#telemetry?.sent(batch.records.length, frames.length);
    return undefined;
  }

  #remember(frames: Buffer, records: number): void {
    if (this.#replayBytes === 0) return;
    this.#recent.push({ frames, at: Date.now(), records });
    this.#recentBytes += frames.length;
    const now = Date.now();
    while (this.#recent.length > 0 && (this.#recentBytes > this.#replayBytes || now - this.#recent[0]!.at > this.#replayMs)) {
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
