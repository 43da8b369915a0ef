// Throughput of each sink against local receivers (and a real rsyslog when installed), with realistic records.
// Standalone: `npx node scripts/bench-sinks.ts [--records N]`; `npm run bench` includes it.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Sink } from '../connector/sinks/sink.ts';
import type { RawRecord } from '../connector/core/records.ts';
import { contentRecords } from '../connector/sources/activity-api/content-records.ts';
import { FileSink } from '../connector/sinks/file.ts';
import { HttpSink } from '../connector/sinks/http/ndjson-http.ts';
import { SplunkHecSink } from '../connector/sinks/http/splunk-hec.ts';
import { ElasticsearchSink } from '../connector/sinks/http/elasticsearch.ts';
import { SyslogSink } from '../connector/sinks/syslog.ts';
import { Corpus } from '../test/emulator/corpus.ts';
import { contentTypes } from '../contract/content-types.ts';
import { bulkReceiver, hecReceiver, ndjsonReceiver } from '../test/receivers/http-receivers.ts';
import { rsyslogUnavailable, startRsyslog } from '../test/receivers/rsyslog.ts';
import { createTestPki } from '../test/emulator/tls.ts';
import { OcsfSink, OcsfTransform } from '../connector/sinks/ocsf/ocsf-sink.ts';

export interface SinkBenchResult { sink: string; records: number; seconds: number; recordsPerSecond: number; mbPerSecond: number; microsPerRecord?: number; note?: string }

/** A record of the stand-in corpus as JSON text, whichever form the corpus hands it out in (text or parsed). */
function recordText(record: unknown): string {
  if (typeof record === 'string') return record;
  if (Buffer.isBuffer(record)) return record.toString('utf8');
  return JSON.stringify(record);
}

/** Records as the sinks get them in a run: each blob's body split by the connector's own content-records. */
function sampleRecords(count: number): RawRecord[] {
  const corpus = new Corpus({ seed: 3, tenantId: '2f0c3a11-6c55-4d8a-9a1e-0d7d2c1b4e77', tenantDomain: 'contoso.onmicrosoft.com', origin: new Date('2026-11-20T00:00:00Z'), blobIntervalMinutes: 10, recordsPerBlob: 100, lateBlobRate: 0, duplicateRate: 0 });
  const records: RawRecord[] = [];
  for (let index = 0; records.length < count; index += 1) {
    const texts = (corpus.records(corpus.blob(contentTypes[index % contentTypes.length]!, index)) as unknown[]).map(recordText);
    records.push(...contentRecords(Buffer.from(`[${texts.join(",")}]`)).records);
  }
  return records.slice(0, count);
}

async function measure(label: string, sink: Sink, records: RawRecord[], batchSize = 500): Promise<SinkBenchResult> {
  await sink.open?.(undefined);
  const bytes = records.reduce((n, r) => n + r.bytes.length + 1, 0);
  const started = performance.now();
  for (let i = 0; i < records.length; i += batchSize) await sink.write({ contentType: 'Audit.Exchange', records: records.slice(i, i + batchSize) });
  await sink.close();
  const seconds = (performance.now() - started) / 1000;
  return { sink: label, records: records.length, seconds: Number(seconds.toFixed(2)), recordsPerSecond: Math.round(records.length / seconds), mbPerSecond: Number((bytes / 1e6 / seconds).toFixed(1)), microsPerRecord: Number(((seconds * 1e6) / records.length).toFixed(2)) };
}

/** The OCSF transform alone (parse, map, serialize each record), in the batches a sink gets: its cost per record. */
function measureOcsfTransform(records: RawRecord[], batchSize = 500): SinkBenchResult {
  const transform = new OcsfTransform();
  const bytes = records.reduce((n, r) => n + r.bytes.length, 0);
  const started = performance.now();
  for (let i = 0; i < records.length; i += batchSize) transform.apply({ contentType: 'Audit.Exchange', records: records.slice(i, i + batchSize) });
  const seconds = (performance.now() - started) / 1000;
  return { sink: 'format=ocsf transform alone', records: records.length, seconds: Number(seconds.toFixed(2)), recordsPerSecond: Math.round(records.length / seconds), mbPerSecond: Number((bytes / 1e6 / seconds).toFixed(1)), microsPerRecord: Number(((seconds * 1e6) / records.length).toFixed(2)) };
}

export async function benchSinks(options: { records?: number } = {}): Promise<SinkBenchResult[]> {
  const records = sampleRecords(options.records ?? 50_000);
  const dir = await mkdtemp(join(tmpdir(), 'o365-sink-bench-'));
  const env = { BENCH_TOKEN: 'bench-token' };
  const results: SinkBenchResult[] = [];
  // Closed whatever happens: a receiver left open would keep the bench process alive after a failure.
  const receivers: Array<{ close(): Promise<void> }> = [];
  const opened = <T extends { close(): Promise<void> }>(receiver: T): T => { receivers.push(receiver); return receiver; };
  try {
    results.push(await measure('file (fsync per batch)', new FileSink(join(dir, 'out.ndjson')), records));
    results.push(await measure('file format=ocsf', new OcsfSink(new FileSink(join(dir, 'ocsf.ndjson')), new OcsfTransform()), records));
    results.push(measureOcsfTransform(records));
    const ndjson = opened(await ndjsonReceiver());
    results.push(await measure('http ndjson', new HttpSink(`${ndjson.url}/in?insecure=1&tokenEnv=BENCH_TOKEN`, { env }), records));
    results.push(await measure('http ndjson format=ocsf', new OcsfSink(new HttpSink(`${ndjson.url}/in?insecure=1&tokenEnv=BENCH_TOKEN`, { env }), new OcsfTransform()), records));
    results.push(await measure('http ndjson gzip', new HttpSink(`${ndjson.url}/in?gzip=1&insecure=1&tokenEnv=BENCH_TOKEN`, { env }), records));
    const hec = opened(await hecReceiver('bench-token'));
    results.push(await measure('splunk-hec', new SplunkHecSink(`splunk-hec://127.0.0.1:${new URL(hec.url).port}?tls=0&insecure=1&tokenEnv=BENCH_TOKEN`, { env }), records));
    const bulk = opened(await bulkReceiver());
    results.push(await measure('elasticsearch bulk', new ElasticsearchSink(`elasticsearch://127.0.0.1:${new URL(bulk.url).port}/o365?tls=0`, { env }), records));
    const missing = rsyslogUnavailable();
    if (missing) {
      results.push({ sink: 'syslog', records: 0, seconds: 0, recordsPerSecond: 0, mbPerSecond: 0, note: `skipped: ${missing}` });
    } else {
      const pki = await createTestPki({ dir: join(dir, 'pki') });
      const rsyslog = await startRsyslog(dir, pki);
      try {
        results.push(await measure('syslog+tcp (rsyslog)', new SyslogSink(`syslog+tcp://127.0.0.1:${rsyslog.tcpPort}`), records));
        results.push(await measure('syslog+tls (rsyslog)', new SyslogSink(`syslog+tls://127.0.0.1:${rsyslog.tlsPort}?ca=${pki.caFile}`), records));
      } finally {
        await rsyslog.stop();
      }
    }
  } finally {
    for (const receiver of receivers) await receiver.close().catch(() => {});
    await rm(dir, { recursive: true, force: true });
  }
  return results;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const count = Number(process.argv[process.argv.indexOf('--records') + 1]) || 50_000;
  process.stdout.write(JSON.stringify(await benchSinks({ records: count }), null, 2) + '\n');
}
