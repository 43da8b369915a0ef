/**
 * Local stand-ins for what SIEM collectors accept over HTTP, each faithful to its documented contract:
 * a generic NDJSON endpoint, Splunk HTTP Event Collector (/services/collector/event, `Authorization: Splunk
 * <token>`, `{"text","code"}` answers) and Elasticsearch `_bulk` (per-item results, `errors` flag, 409 on
 * `create` of an existing id). Failures are scripted per request; everything received is recorded.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

export type Scripted = 'ok' | 'drop' | { slowMs: number } | { status: number; body?: string; headers?: Record<string, string> };

export interface Receiver {
  readonly url: string;
  readonly requests: Array<{ headers: IncomingMessage['headers']; body: string }>;
  /** Answers for the next requests, in order; afterwards the receiver's normal behaviour. */
  script(...answers: Scripted[]): void;
  close(): Promise<void>;
}

async function listen(handler: (req: IncomingMessage, body: string, res: ServerResponse) => void): Promise<Receiver & { server: Server }> {
  const requests: Receiver['requests'] = [];
  const queue: Scripted[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let raw = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') raw = gunzipSync(raw);
      const body = raw.toString('utf8');
      const next = queue.shift() ?? 'ok';
      if (next === 'drop') { req.socket.destroy(); return; }
      if (typeof next === 'object' && 'slowMs' in next) { setTimeout(() => { if (!res.destroyed) { res.writeHead(200); res.end(); } }, next.slowMs); return; }
      if (typeof next === 'object' && 'status' in next) { res.writeHead(next.status, { 'content-type': 'application/json', ...next.headers }); res.end(next.body ?? ''); return; }
      requests.push({ headers: req.headers, body });
      handler(req, body, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    server, requests, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    script: (...answers) => { queue.push(...answers); },
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

export function ndjsonReceiver(): Promise<Receiver> {
  return listen((_req, _body, res) => { res.writeHead(200); res.end(); });
}

export function hecReceiver(token: string, indexes: readonly string[] = ['main', 'o365']): Promise<Receiver> {
  return listen((req, body, res) => {
    const answer = (status: number, text: string, code: number) => { res.writeHead(status, { 'content-type': 'application/json' }); res.end(JSON.stringify({ text, code })); };
    if (req.url !== '/services/collector/event') return answer(404, 'The requested URL was not found on this server.', 404);
    const auth = req.headers.authorization;
    if (!auth) return answer(401, 'Token is required', 2);
    if (!auth.startsWith('Splunk ')) return answer(401, 'Invalid authorization', 3);
    if (auth !== `Splunk ${token}`) return answer(403, 'Invalid token', 4);
    if (body.trim() === '') return answer(400, 'No data', 5);
    for (const line of body.split('\n')) {
      const event = JSON.parse(line) as { event?: unknown; index?: string };
      if (event.event === undefined) return answer(400, 'Event field is required', 12);
      if (event.index && !indexes.includes(event.index)) return answer(400, 'Incorrect index', 7);
    }
    answer(200, 'Success', 0);
  });
}

export interface BulkReceiver extends Receiver {
  readonly documents: Map<string, unknown>;
  /** Item statuses to force for the next items, in order (e.g. 429 for a busy shard). */
  failItems(...statuses: number[]): void;
}

export async function bulkReceiver(): Promise<BulkReceiver> {
  const documents = new Map<string, unknown>();
  const itemFailures: number[] = [];
  const receiver = await listen((req, body, res) => {
    if (req.url !== '/_bulk') { res.writeHead(404); res.end(); return; }
    const lines = body.split('\n').filter(Boolean);
    const items = [];
    for (let i = 0; i < lines.length; i += 2) {
      const action = JSON.parse(lines[i]!) as { create?: { _index: string; _id: string } };
      const meta = action.create!;
      const forced = itemFailures.shift();
      const key = `${meta._index}/${meta._id}`;
      if (forced) items.push({ create: { _index: meta._index, _id: meta._id, status: forced, error: { type: forced === 429 ? 'es_rejected_execution_exception' : 'mapper_parsing_exception', reason: forced === 429 ? 'rejected execution of coordinating operation' : 'failed to parse field [ObjectId]' } } });
      else if (documents.has(key)) items.push({ create: { _index: meta._index, _id: meta._id, status: 409, error: { type: 'version_conflict_engine_exception', reason: `[${meta._id}]: version conflict, document already exists` } } });
      else { documents.set(key, JSON.parse(lines[i + 1]!)); items.push({ create: { _index: meta._index, _id: meta._id, status: 201, result: 'created' } }); }
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ took: 3, errors: items.some((item) => item.create.status >= 300), items }));
  });
  return Object.assign(receiver, { documents, failItems: (...statuses: number[]) => { itemFailures.push(...statuses); } });
}
