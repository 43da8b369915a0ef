// `npm run emulator -- [options]`: the local stand-in for the Microsoft endpoints, until SIGINT/SIGTERM.
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { contentTypes, isContentType, type ContentType } from '../contract/content-types.ts';
import { auditSearchDefaults, parseFaultRule, startEmulator, type FaultRule } from '../test/emulator/index.ts';
import { connectorOutputs } from '../test/emulator/connector-config.ts';
import { count, number, share } from './arguments.ts';


function faultRule(spec: string, previous: FaultRule[] = []): FaultRule[] {
  try {
    return [...previous, parseFaultRule(spec)];
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

function positiveCount(value: string): number {
  const parsed = count(value);
  if (parsed < 1) throw new InvalidArgumentError('must be a whole number >= 1');
  return parsed;
}

function contentTypeList(value: string): ContentType[] {
  if (value === 'all') return [...contentTypes];
  const types = value.split(',').map((type) => type.trim()).filter(Boolean);
  const unknown = types.filter((type) => !isContentType(type));
  if (unknown.length > 0) throw new InvalidArgumentError(`unknown content type ${unknown.join(', ')}: use all or ${contentTypes.join(', ')}`);
  return types as ContentType[];
}

const options = new Command('emulator')
  .description('Local HTTPS stand-in for the Microsoft identity platform and the Office 365 Management Activity API')
  .option('--port <n>', 'port on 127.0.0.1 (0 = any free port)', number, 0)
  .option('--seed <n>', 'seed of ids, secret, corpus and fault draws', number, 1)
  .option('--tenant-id <guid>', 'tenant id (default: derived from the seed)')
  .option('--tenant-domain <name>', 'tenant domain', 'contoso.onmicrosoft.com')
  .option('--client-id <guid>', 'application (client) id (default: derived from the seed)')
  .option('--client-secret <value>', 'client secret (default: derived from the seed)')
  .option('--token-lifetime <seconds>', 'access token lifetime', number, 3599)
  .option('--grant-roles <roles>', 'comma-separated roles put in tokens', 'ActivityFeed.Read,ActivityFeed.ReadDlp,ServiceHealth.Read')
  .option('--enable <types>', 'content types subscribed at start: all or a comma-separated list (default: none)', contentTypeList)
  .option('--days <n>', 'days of history before start-up (at most 7 are listable)', number, 1)
  .option('--blob-interval <minutes>', 'minutes between blobs of one content type (fractions allowed)', number, 30)
  .option('--records-per-blob <n>', 'records in each blob', number, 20)
  .option('--page-size <n>', 'content entries per listing page', number, 100)
  .option('--late-rate <0..1>', 'share of blobs listed 20 minutes to --late-max after their contentCreated', share, 0.1)
  .option('--late-max <minutes>', 'how late a late blob may be listed (e.g. 8640 for 6 days)', number, 90)
  .option('--duplicate-rate <0..1>', 'share of blobs repeating a record of an earlier blob', share, 0.05)
  .option('--duplicate-max-age <minutes>', 'how much older that blob may be (default: the previous blob)', number, 0)
  .option('--arrival-interval <ms>', 'milliseconds between generated blobs of each type, besides the grid (0 = off)', number, 60_000)
  .option('--arrival-late-rate <0..1>', 'share of generated blobs that arrive late', share, 0.2)
  .option('--quota <n>', 'requests per minute per PublisherIdentifier', number, 2000)
  .option('--anonymous-quota <n>', 'requests per minute shared by callers without PublisherIdentifier (default: quota / 10)', number)
  .option('--throttle-rate <0..1>', 'share of API requests answered AF429', share, 0)
  .addOption(new Option('--throttle-status <code>', 'HTTP status of AF429').choices(['429', '403']).default('429'))
  .option('--retry-after <seconds>', 'Retry-After on AF429 (default: none, as documented)', number)
  .option('--server-error-rate <0..1>', 'share of API requests answered with a 5xx', share, 0)
  .addOption(new Option('--server-error-code <code>', 'which 5xx').choices(['AF50000', 'AF50005', 'AF50006', '503']).default('AF50000'))
  .option('--drop-rate <0..1>', 'share of blob fetches cut mid-body', share, 0)
  .option('--expired-rate <0..1>', 'share of blob fetches answered AF20051', share, 0)
  .option('--latency <ms>', 'added latency per API request', number, 0)
  .option('--fault <rule>', 'scheduled fault, repeatable: kind@from-to | kind@every:N [/route,...]; kinds throttle, server-error, drop, expired, revoke, latency', faultRule)
  .option('--auditing-off', 'behave like a tenant without unified audit logging')
  .option('--no-audit-search', 'Graph tokens without AuditLogsQuery.Read.All: the audit search answers 403, the configuration omits auditSearch')
  .option('--audit-search-polls <n>', 'GETs of an audit search query until it is done (earlier ones answer running)', positiveCount, auditSearchDefaults.pollsUntilDone)
  .option('--audit-search-page-size <n>', 'records per page of an audit search query', positiveCount, auditSearchDefaults.pageSize)
  .option('--audit-search-record-limit <n>', 'records an audit search query returns at most (its recordCountLimit)', positiveCount, auditSearchDefaults.recordCountLimit)
  .option('--audit-search-max-queries <n>', 'unfinished audit search queries per tenant; one more answers 429', positiveCount, auditSearchDefaults.maxUnfinishedQueries)
  .option('--audit-search-retention <days>', 'how far back the audit search holds records', number, auditSearchDefaults.retentionDays)
  .option('--config-out <file>', 'write the connector configuration (Pulumi stack-outputs form) to this file')
  .option('--tenants <n>', 'serve n tenants on the same host, each with its own ids, secret, quota and corpus (the id options name the first)', positiveCount, 1)
  .option('--quiet-tenants', 'tenants after the first serve no content: no history and no arrivals')
  .option('--outputs-dir <dir>', "write each tenant's configuration to <dir>/<tenantId>.json (default with --tenants: a new temporary directory)")
  .parse()
  .opts();

const faults = {
  throttleRate: options.throttleRate, throttleStatus: options.throttleStatus === '403' ? 403 as const : 429 as const,
  ...(options.retryAfter !== undefined ? { retryAfterSeconds: options.retryAfter } : {}),
  serverErrorRate: options.serverErrorRate, serverErrorCode: options.serverErrorCode, dropMidBodyRate: options.dropRate,
  expiredRate: options.expiredRate, latencyMs: options.latency, schedule: options.fault ?? [],
};
const emulator = await startEmulator({
  port: options.port, seed: options.seed, tenantDomain: options.tenantDomain, tokenLifetimeSeconds: options.tokenLifetime,
  ...(options.tenantId ? { tenantId: options.tenantId } : {}),
  ...(options.clientId ? { clientId: options.clientId } : {}),
  ...(options.clientSecret ? { clientSecret: options.clientSecret } : {}),
  grantedRoles: String(options.grantRoles).split(',').filter(Boolean),
  enabledContentTypes: options.enable ?? [],
  days: options.days, blobIntervalMinutes: options.blobInterval, recordsPerBlob: options.recordsPerBlob, pageSize: options.pageSize,
  lateBlobRate: options.lateRate, lateMaxMinutes: options.lateMax, duplicateRate: options.duplicateRate, duplicateMaxAgeMinutes: options.duplicateMaxAge,
  ...(options.arrivalInterval > 0 ? { arrivalIntervalMs: options.arrivalInterval, arrivalLateRate: options.arrivalLateRate } : {}),
  quotaPerMinute: options.quota,
  ...(options.anonymousQuota !== undefined ? { anonymousQuotaPerMinute: options.anonymousQuota } : {}),
  auditingEnabled: !options.auditingOff,
  faults,
  ...(options.auditSearch ? {} : { graphRoles: ['ServiceHealth.Read.All', 'ServiceMessage.Read.All'] }),
  auditSearch: {
    pollsUntilDone: options.auditSearchPolls, pageSize: options.auditSearchPageSize, recordCountLimit: options.auditSearchRecordLimit,
    maxUnfinishedQueries: options.auditSearchMaxQueries, retentionDays: options.auditSearchRetention,
  },
});
// Every tenant gets the same options and faults; ids and secrets are drawn from the seed and the tenant's index.
for (let added = 1; added < options.tenants; added += 1) emulator.addTenant({ faults, ...(options.quietTenants ? { quiet: true } : {}) });
if (options.configOut) await writeFile(options.configOut, JSON.stringify(connectorOutputs(emulator), null, 2) + '\n', { mode: 0o600 });
const outputsDir: string | undefined = options.outputsDir ?? (options.tenants > 1 ? await mkdtemp(join(tmpdir(), 'o365-emulator-tenants-')) : undefined);
if (outputsDir !== undefined) {
  await mkdir(outputsDir, { recursive: true, mode: 0o700 });
  for (const tenant of emulator.tenants()) await tenant.writeStackOutputs(join(outputsDir, `${tenant.tenantId}.json`));
}
process.stdout.write(JSON.stringify({
  port: emulator.port, caFile: emulator.caFile, tenantId: emulator.tenantId, clientId: emulator.clientId,
  clientSecret: emulator.clientSecret, authorityHost: emulator.authorityHost, apiRoot: emulator.apiRoot,
  ...(outputsDir !== undefined ? { tenants: options.tenants, outputsDir } : {}),
}) + '\n');
const stop = () => { void emulator.stop().then(() => process.exit(0)); };
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
