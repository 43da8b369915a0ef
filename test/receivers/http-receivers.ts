/**
 * Local stand-ins for what SIEM collectors accept over HTTP, each faithful to its documented contract:
 * a generic NDJSON endpoint; Splunk HTTP Event Collector (/services/collector/event, `Authorization: Splunk
 * <token>`, `{"text","code"}` answers with Splunk's codes and statuses, `invalid-event-number`, and indexer
 * acknowledgement through a request channel and /services/collector/ack); and Elasticsearch `_bulk` (NDJSON
 * action/source pairs, per-item statuses, the `errors` flag, 409 on `create` of an existing id, each document's
 * source kept as the bytes it was sent as, as Elasticsearch keeps `_source`).
 * Failures are scripted per request; what was accepted is recorded, as text and as the bytes received.
 */
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

/**
 * `drop`: read the request, then cut the connection without storing it.
 * `storeThenDrop`: store the request as usual, then cut the connection instead of answering (the sender cannot
 * know it arrived). `slowMs`: answer 200 only after that long, storing nothing if the sender gave up.
 */
export type Scripted = 'ok' | 'drop' | 'storeThenDrop' | { slowMs: number } | { status: number; body?: string; headers?: Record<string, string> };

export interface Receiver {
  readonly url: string;
  /** Requests the receiver accepted (handled normally), in order: the body decoded, and `raw`, its bytes (after gunzip). */
  readonly requests: Array<{ url: string; headers: IncomingMessage['headers']; body: string; raw: Buffer }>;
  /** Requests of any kind, scripted failures included. */
  readonly attempts: () => number;
  /** Answers for the next requests, in order; afterwards the receiver's normal behaviour. */
  script(...answers: Scripted[]): void;
  close(): Promise<void>;
}

type Handler = (req: IncomingMessage, body: string, res: ServerResponse, raw: Buffer) => void;

/** PEM certificate and key: the receiver then speaks https. */
export interface ReceiverTls { readonly cert: string; readonly key: string }

async function listen(handler: Handler, tls?: ReceiverTls): Promise<Receiver & { server: Server }> {
  const requests: Receiver['requests'] = [];
  const queue: Scripted[] = [];
  let attempts = 0;
  const serve: RequestListener = (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      attempts += 1;
      let raw = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') raw = gunzipSync(raw);
      const body = raw.toString('utf8');
      const next = queue.shift() ?? 'ok';
      const store = () => requests.push({ url: req.url ?? '', headers: req.headers, body, raw });
      if (next === 'drop') { req.socket.destroy(); return; }
      if (typeof next === 'object' && 'slowMs' in next) {
        const timer = setTimeout(() => { if (!res.destroyed) { store(); handler(req, body, res, raw); } }, next.slowMs);
        res.on('close', () => clearTimeout(timer));
        return;
      }
      if (typeof next === 'object' && 'status' in next) { res.writeHead(next.status, { 'content-type': 'application/json', ...next.headers }); res.end(next.body ?? ''); return; }
      store();
      if (next === 'storeThenDrop') {
        const discard = new ServerResponseSink();
        handler(req, body, discard as unknown as ServerResponse, raw);
        req.socket.destroy();
        return;
      }
      handler(req, body, res, raw);
    });
  };
  const server: Server = tls ? createTlsServer({ cert: tls.cert, key: tls.key }, serve) : createServer(serve);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    server, requests, url: `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`,
    attempts: () => attempts,
    script: (...answers) => { queue.push(...answers); },
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

/** Swallows the answer of a request whose connection is cut after it was stored. */
class ServerResponseSink {
  writeHead(): this { return this; }
  end(): void {}
}

export function ndjsonReceiver(options: { tls?: ReceiverTls } = {}): Promise<Receiver> {
  return listen((_req, _body, res) => { res.writeHead(200); res.end(); }, options.tls);
}

export interface HecReceiverOptions {
  /** Indexes the token may write to. */
  readonly indexes?: readonly string[];
  /** Indexer acknowledgement on for the token: requests need a channel, answers carry an ackId. */
  readonly ack?: boolean;
  /** Acknowledgement queries answered `false` before an ackId is reported indexed. */
  readonly pollsBeforeIndexed?: number;
}

export interface HecReceiver extends Receiver {
  /** Events accepted (with ack on: accepted; indexed ones are those whose ackId was reported true). */
  readonly events: Array<{ time?: number; sourcetype?: string; source?: string; index?: string; host?: string; event: Record<string, unknown> }>;
  /** The next accepted request's events are lost by the indexer: its ackId never becomes true. */
  loseNextAck(): void;
  /** Ack queries served. */
  readonly ackQueries: () => number;
}

export async function hecReceiver(token: string, options: HecReceiverOptions = {}): Promise<HecReceiver> {
  const indexes = options.indexes ?? ['main', 'o365'];
  const events: HecReceiver['events'] = [];
  const acks = new Map<number, { polls: number; lost: boolean; events: HecReceiver['events'] }>();
  let nextAckId = 0;
  let loseNext = false;
  let ackQueries = 0;
  const receiver = await listen((req, body, res) => {
    const answer = (status: number, reply: Record<string, unknown>) => { res.writeHead(status, { 'content-type': 'application/json' }); res.end(JSON.stringify(reply)); };
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const auth = req.headers.authorization;
    if (!auth) return answer(401, { text: 'Token is required', code: 2 });
    if (!auth.startsWith('Splunk ')) return answer(401, { text: 'Invalid authorization', code: 3 });
    if (auth !== `Splunk ${token}`) return answer(403, { text: 'Invalid token', code: 4 });
    const channel = req.headers['x-splunk-request-channel'];
    if (path === '/services/collector/ack') {
      if (!options.ack) return answer(400, { text: 'ACK is disabled', code: 14 });
      if (!channel) return answer(400, { text: 'Data channel is missing', code: 10 });
      ackQueries += 1;
      const asked = (JSON.parse(body) as { acks: number[] }).acks;
      const reply: Record<string, boolean> = {};
      for (const id of asked) {
        const entry = acks.get(id);
        if (entry && !entry.lost && entry.polls >= (options.pollsBeforeIndexed ?? 0)) reply[id] = true;
        else reply[id] = false;
        if (entry) entry.polls += 1;
      }
      return answer(200, { acks: reply });
    }
    if (path !== '/services/collector/event' && path !== '/services/collector') return answer(404, { text: 'The requested URL was not found on this server.', code: 404 });
    if (options.ack && !channel) return answer(400, { text: 'Data channel is missing', code: 10 });
    if (body.trim() === '') return answer(400, { text: 'No data', code: 5 });
    const parsed: HecReceiver['events'] = [];
    for (const [n, line] of body.split('\n').entries()) {
      let event: { event?: unknown; index?: string };
      try { event = JSON.parse(line) as typeof event; } catch { return answer(400, { text: 'Invalid data format', code: 6, 'invalid-event-number': n }); }
      if (event.event === undefined) return answer(400, { text: 'Event field is required', code: 12, 'invalid-event-number': n });
      if (event.event === '' || event.event === null) return answer(400, { text: 'Event field cannot be blank', code: 13, 'invalid-event-number': n });
      if (event.index && !indexes.includes(event.index)) return answer(400, { text: 'Incorrect index', code: 7, 'invalid-event-number': n });
      parsed.push(event as HecReceiver['events'][number]);
    }
    if (!options.ack) {
      events.push(...parsed);
      return answer(200, { text: 'Success', code: 0 });
    }
    const ackId = nextAckId++;
    acks.set(ackId, { polls: 0, lost: loseNext, events: parsed });
    if (!loseNext) events.push(...parsed);
    loseNext = false;
    answer(200, { text: 'Success', code: 0, ackId });
  });
  return Object.assign(receiver, { events, loseNextAck: () => { loseNext = true; }, ackQueries: () => ackQueries });
}

export interface BulkReceiver extends Receiver {
  /** Stored documents by `<index>/<_id>`: the source line's bytes, as sent. */
  readonly documents: Map<string, Buffer>;
  /** Item statuses to force for the next items, in order (e.g. 429 for a busy shard, 400 for a mapping error). */
  failItems(...statuses: number[]): void;
}

const itemErrors: Record<number, { type: string; reason: string }> = {
  429: { type: 'es_rejected_execution_exception', reason: 'rejected execution of coordinating operation [coordinating_and_primary_bytes=0, replica_bytes=0, all_bytes=0, coordinating_operation_bytes=1048576, max_coordinating_and_primary_bytes=107374182]' },
  503: { type: 'unavailable_shards_exception', reason: '[o365-audit][0] primary shard is not active Timeout: [1m]' },
  400: { type: 'document_parsing_exception', reason: '[1:42] failed to parse field [ObjectId] of type [long] in document' },
  403: { type: 'security_exception', reason: 'action [indices:data/write/bulk[s]] is unauthorized for API key' },
};

/**
 * `security`: Elasticsearch with security on: requests need `Authorization: ApiKey <apiKey>` (else 401), and
 * `_security/user/_has_privileges` answers whether the key may create documents in the indexes asked about
 * (those in `writable`). Without it, security is off: no authentication, and that API does not exist.
 */
export async function bulkReceiver(options: {
  security?: { apiKey: string; writable: readonly string[] };
  /** A secured cluster that refuses `_has_privileges` to this key (a restricted API key): this answer instead. */
  privilegesRefused?: { status: number; body: string };
} = {}): Promise<BulkReceiver> {
  const documents = new Map<string, Buffer>();
  const forced: number[] = [];
  const receiver = await listen((req, body, res, raw) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const { security } = options;
    if (security) {
      if (req.headers.authorization !== `ApiKey ${security.apiKey}`) {
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { type: 'security_exception', reason: 'unable to authenticate with provided credentials and anonymous access is not allowed for this request' }, status: 401 }));
        return;
      }
      if (url.pathname === '/_security/user/_has_privileges' && options.privilegesRefused) {
        res.writeHead(options.privilegesRefused.status, { 'content-type': 'application/json' });
        res.end(options.privilegesRefused.body);
        return;
      }
      if (url.pathname === '/_security/user/_has_privileges') {
        const asked = (JSON.parse(body) as { index: Array<{ names: string[]; privileges: string[] }> }).index;
        const index: Record<string, Record<string, boolean>> = {};
        for (const entry of asked) for (const name of entry.names) index[name] = Object.fromEntries(entry.privileges.map((p) => [p, security.writable.includes(name)]));
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ username: 'o365', has_all_requested: Object.values(index).every((privileges) => Object.values(privileges).every(Boolean)), cluster: {}, index, application: {} }));
        return;
      }
    }
    if (req.method !== 'POST' || !/^(\/[^/_][^/]*)?\/_bulk$/.test(url.pathname)) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { type: 'illegal_argument_exception', reason: `no handler for ${url.pathname}` }, status: 404 }));
      return;
    }
    const lines: Buffer[] = [];
    for (let start = 0; start < raw.length;) {
      const feed = raw.indexOf(0x0a, start);
      const end = feed < 0 ? raw.length : feed;
      if (end > start) lines.push(raw.subarray(start, end));
      start = end + 1;
    }
    const items: Array<Record<string, { _index: string; _id: string; status: number; result?: string; error?: { type: string; reason: string } }>> = [];
    for (let i = 0; i < lines.length; i += 2) {
      const action = JSON.parse(lines[i]!.toString('utf8')) as Record<string, { _index?: string; _id?: string }>;
      const [op, meta] = Object.entries(action)[0]!;
      const index = meta._index ?? url.pathname.split('/')[1]!;
      // Without an _id, Elasticsearch makes one up: the document is new whatever it holds.
      const id = meta._id ?? `auto-${documents.size}-${Math.random().toString(36).slice(2)}`;
      const key = `${index}/${id}`;
      const source = lines[i + 1]!;
      JSON.parse(source.toString('utf8')); // a source that is not JSON fails the request
      const failure = forced.shift();
      if (failure) items.push({ [op]: { _index: index, _id: id, status: failure, error: itemErrors[failure] ?? { type: 'exception', reason: `status ${failure}` } } });
      else if (op === 'create' && documents.has(key)) items.push({ [op]: { _index: index, _id: id, status: 409, error: { type: 'version_conflict_engine_exception', reason: `[${id}]: version conflict, document already exists (current version [1])` } } });
      else { const existed = documents.has(key); documents.set(key, Buffer.from(source)); items.push({ [op]: { _index: index, _id: id, status: existed ? 200 : 201, result: existed ? 'updated' : 'created' } }); }
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ took: 3, errors: items.some((item) => Object.values(item)[0]!.status >= 300), items }));
  });
  return Object.assign(receiver, { documents, failItems: (...statuses: number[]) => { forced.push(...statuses); } });
}
