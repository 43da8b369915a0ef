// `npm run emulator -- [options]`: the local stand-in for the Microsoft endpoints, until SIGINT/SIGTERM.
import { writeFile } from 'node:fs/promises';
import { Command, InvalidArgumentError } from 'commander';
import { startEmulator } from '../test/emulator/index.ts';
import { connectorOutputs } from '../test/emulator/connector-config.ts';

function number(value: string): number {
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed < 0) throw new InvalidArgumentError('must be a non-negative number');
  return parsed;
}

const options = new Command('emulator')
  .description('Local HTTPS stand-in for the Microsoft identity platform and the Office 365 Management Activity API')
  .option('--port <n>', 'port on 127.0.0.1 (0 = any free port)', number, 0)
  .option('--seed <n>', 'seed of the deterministic corpus and faults', number, 1)
  .option('--days <n>', 'days of history before start-up (at most 7 are listable)', number, 1)
  .option('--blob-interval <minutes>', 'minutes between blobs of one content type', number, 30)
  .option('--records-per-blob <n>', 'records in each blob', number, 20)
  .option('--page-size <n>', 'content entries per listing page', number, 100)
  .option('--late-rate <0..1>', 'share of blobs listed 20-90 minutes after their contentCreated', number, 0.1)
  .option('--duplicate-rate <0..1>', 'share of blobs repeating a record of the previous blob', number, 0.05)
  .option('--quota <n>', 'requests per minute per PublisherIdentifier', number, 2000)
  .option('--token-lifetime <seconds>', 'access token lifetime', number, 3599)
  .option('--throttle-rate <0..1>', 'share of API requests answered AF429', number, 0)
  .option('--throttle-status <code>', 'HTTP status of AF429 (429 or 403)', number, 429)
  .option('--retry-after <seconds>', 'Retry-After on AF429 (default: none, as documented)', number)
  .option('--server-error-rate <0..1>', 'share of API requests answered 500 AF50000', number, 0)
  .option('--drop-rate <0..1>', 'share of blob fetches cut mid-body', number, 0)
  .option('--latency <ms>', 'added latency per API request', number, 0)
  .option('--auditing-off', 'behave like a tenant without unified audit logging')
  .option('--config-out <file>', 'write the connector configuration (stack-outputs form) to this file')
  .parse()
  .opts();

const emulator = await startEmulator({
  port: options.port, seed: options.seed, days: options.days, blobIntervalMinutes: options.blobInterval,
  recordsPerBlob: options.recordsPerBlob, pageSize: options.pageSize, lateBlobRate: options.lateRate,
  duplicateRate: options.duplicateRate, quotaPerMinute: options.quota, tokenLifetimeSeconds: options.tokenLifetime,
  auditingEnabled: !options.auditingOff,
  faults: {
    throttleRate: options.throttleRate, throttleStatus: options.throttleStatus === 403 ? 403 : 429,
    ...(options.retryAfter !== undefined ? { retryAfterSeconds: options.retryAfter } : {}),
    serverErrorRate: options.serverErrorRate, dropMidBodyRate: options.dropRate, latencyMs: options.latency,
  },
});
if (options.configOut) await writeFile(options.configOut, JSON.stringify(connectorOutputs(emulator), null, 2) + '\n', { mode: 0o600 });
process.stdout.write(JSON.stringify({
  port: emulator.port, caFile: emulator.caFile, tenantId: emulator.tenantId, clientId: emulator.clientId,
  clientSecret: emulator.clientSecret, authorityHost: emulator.authorityHost, apiRoot: emulator.apiRoot,
}) + '\n');
const stop = () => { void emulator.stop().then(() => process.exit(0)); };
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
