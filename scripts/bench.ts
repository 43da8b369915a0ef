// `npm run bench -- [--records N]`: a backfill of N records from the stand-in (its own process, so its CPU is not
// counted against the connector) through the real connector pipeline into a file sink, beside the single-core
// limit measured in the same run (JSON.parse + JSON.stringify + write of the same bytes).
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { Command } from 'commander';
import { request } from 'undici';
import { contentTypes } from '../connector/api/content-types.ts';
import { ActivityClient } from '../connector/api/activity-client.ts';
import { createHttpAgent } from '../connector/api/http-agent.ts';
import { MsalTokenProvider } from '../connector/auth/token-provider.ts';
import { runConnector } from '../connector/pipeline/run-connector.ts';
import { FileSink } from '../connector/sinks/file.ts';
import { createLogger } from '../connector/status/log.ts';
import { Telemetry } from '../connector/status/telemetry.ts';
import { benchSinks } from './bench-sinks.ts';

const options = new Command('bench')
  .option('--records <n>', 'records in the backfill', (v) => Number(v), 200_000)
  .option('--records-per-blob <n>', 'records per blob', (v) => Number(v), 100)
  .option('--requests-per-minute <n>', 'connector request budget', (v) => Number(v), 1800)
  .option('--fetch-concurrency <n>', 'blobs fetched ahead', (v) => Number(v), 8)
  .option('--quota <n>', 'stand-in quota per minute', (v) => Number(v), 2000)
  .option('--throttle-rate <0..1>', 'share of requests answered AF429', (v) => Number(v), 0)
  .option('--sink-records <n>', 'records per sink in the sink throughput part (0 skips it)', (v) => Number(v), 50_000)
  .option('--json', 'print the result as JSON only')
  .parse()
  .opts();

const days = 6;
const blobsPerType = Math.ceil(options.records / options.recordsPerBlob / contentTypes.length);
const intervalMinutes = (days * 24 * 60) / blobsPerType;
const dir = await mkdtemp(join(tmpdir(), 'o365-bench-'));
const outputsFile = join(dir, 'outputs.json');
const sinkFile = join(dir, 'audit.ndjson');

const emulator = spawn(process.execPath, [resolve(import.meta.dirname, 'emulator.ts'), '--days', String(days), '--blob-interval', String(intervalMinutes),
  '--records-per-blob', String(options.recordsPerBlob), '--late-rate', '0', '--duplicate-rate', '0.02', '--page-size', '200',
  '--quota', String(options.quota), '--throttle-rate', String(options.throttleRate), '--config-out', outputsFile], {
  // A heap cap given to measure the connector (NODE_OPTIONS=--max-old-space-size=…) is not the stand-in's.
  stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, NODE_OPTIONS: '' },
});
const first = await new Promise<string>((resolveLine) => createInterface({ input: emulator.stdout! }).once('line', resolveLine));
const endpoint = JSON.parse(first) as { caFile: string; apiRoot: string };
const outputs = JSON.parse(await readFile(outputsFile, 'utf8')) as Record<string, string>;

const agent = createHttpAgent({ caFile: endpoint.caFile });
const counters = async () => (await (await request(`${endpoint.apiRoot}/_emulator/counters`, { dispatcher: agent })).body.json()) as { apiRequests: number; throttled: number };
const telemetry = new Telemetry();
const tokens = new MsalTokenProvider({ tenantId: outputs['tenantId']!, clientId: outputs['clientId']!, credential: { kind: 'secret', secret: outputs['clientSecret']! }, authorityHost: endpoint.apiRoot, apiRoot: endpoint.apiRoot, dispatcher: agent });
const api = new ActivityClient({ apiRoot: endpoint.apiRoot, tenantId: outputs['tenantId']!, publisherId: outputs['tenantId']!, tokens, dispatcher: agent, telemetry: telemetry.component('collector', 'source'), requestsPerMinute: options.requestsPerMinute, maxInFlight: options.fetchConcurrency });

for (const type of contentTypes) await api.startSubscription(type);
const before = await counters();
const cpuBefore = process.cpuUsage();
const started = performance.now();
const summary = await runConnector({
  api, contentTypes: [...contentTypes], since: new Date(Date.now() - 7 * 86_400_000), once: true, stateDir: join(dir, 'state'),
  sinks: [new FileSink(sinkFile)], telemetry, logger: createLogger({ level: 'warn' }), fetchConcurrency: options.fetchConcurrency,
});
const seconds = (performance.now() - started) / 1000;
const cpu = process.cpuUsage(cpuBefore);
// Taken before the single-core and sink parts, whose receivers hold what they receive: the backfill's own peak.
const peakRssMb = Math.round(process.resourceUsage().maxRSS / 1024);
const after = await counters();
const bytes = (await stat(sinkFile)).size;
const received = telemetry.snapshot().find((c) => c.name === 'collector')!.receivedBytes;

// The single-core limit: parse, serialize and write the same bytes, nothing else.
const limitStarted = performance.now();
const out = await open(join(dir, 'limit.ndjson'), 'w');
let batch = '';
for await (const line of createInterface({ input: createReadStream(sinkFile) })) {
  batch += JSON.stringify(JSON.parse(line)) + '\n';
  if (batch.length > 1_000_000) { await out.write(batch); batch = ''; }
}
await out.write(batch);
await out.sync();
await out.close();
const limitSeconds = (performance.now() - limitStarted) / 1000;

const sinks = options.sinkRecords > 0 ? await benchSinks({ records: options.sinkRecords }) : [];
const result = {
  records: summary.records, blobs: summary.blobs, duplicatesDropped: summary.duplicates, seconds: Number(seconds.toFixed(2)),
  recordsPerSecond: Math.round(summary.records / seconds), mbPerSecond: Number((bytes / 1e6 / seconds).toFixed(2)),
  apiMbReceived: Number((received / 1e6).toFixed(1)),
  requests: after.apiRequests - before.apiRequests, requestsPerMinute: Math.round(((after.apiRequests - before.apiRequests) / seconds) * 60),
  throttled429: after.throttled - before.throttled, connectorCpuSeconds: Number(((cpu.user + cpu.system) / 1e6).toFixed(2)),
  peakRssMb,
  singleCoreLimit: { recordsPerSecond: Math.round(summary.records / limitSeconds), mbPerSecond: Number((bytes / 1e6 / limitSeconds).toFixed(2)) },
  sinks,
  settings: { requestsPerMinute: options.requestsPerMinute, fetchConcurrency: options.fetchConcurrency, recordsPerBlob: options.recordsPerBlob, quota: options.quota, throttleRate: options.throttleRate },
};
process.stdout.write(options.json ? JSON.stringify(result) + '\n' : JSON.stringify(result, null, 2) + '\n');
emulator.kill('SIGTERM');
await agent.close();
await rm(dir, { recursive: true, force: true });
