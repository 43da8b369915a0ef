import type { RetryPolicyOptions } from '../http/retry.ts';
import { auditTypesOf, serviceHealth } from '../../contract/content-types.ts';
import { ActivityApiError, subscriptionMissingCode } from '../sources/activity-api/af-errors.ts';
import { GraphApiError, graphForbiddenCode, graphPermissionOf } from '../sources/graph/graph-errors.ts';
import type { AnnouncementKind } from '../sources/graph/service-health-api.ts';
import { configuredSinkSpecs, createSink, type SinkContext } from '../sinks/spec.ts';
import { redactSecrets } from '../observe/secret-values.ts';
import { describeFailure, exitCodes } from './exit-codes.ts';
import { createRuntime, createTenantClients, loggerFor, type GlobalFlags, type Runtime } from './runtime.ts';
import { HttpAgentsByCaFile } from '../http/http-agent.ts';
import { proxySettings, reachedThroughProxy } from '../http/proxy.ts';
import { ConfigError } from '../core/errors.ts';
import { refuseSingleTenantSources, TenantDirectory } from '../run/tenant-directory.ts';
import { Telemetry } from '../observe/telemetry.ts';

export interface TestFlags extends GlobalFlags {
  /** Sink specs to check too (--sink, repeatable; else O365_SINKS; none: the API alone). */
  readonly sink?: string[] | undefined;
  /** Check every tenant of this directory (fleet mode) instead of one. */
  readonly tenants?: string | undefined;
}

/** `test` answers in seconds: a couple of quick retries, not the collector's patient policy. */
export const quickRetryPolicy: RetryPolicyOptions = { maxAttempts: 3, baseDelayMs: 300, maxDelayMs: 2000, maxRetryAfterMs: 5000, maxThrottledMs: 10_000 };

/**
 * `test`: acquire a token and list subscriptions ("Connection successful <ISO time>" on stdout, or a thrown
 * ConnectorError), then check each configured sink the way `run` will use it: one line each, `Sink <name>: ok (...)`
 * on stdout or `error: sink <name>: CODE: ... Fix: ...` on stderr; exit 6 when a sink failed. Between the two, whether the
 * Microsoft Graph permissions for service health are granted (one line each missing, with the fix; exit 4 when
 * ServiceHealth is to be collected and one is missing).
 */
export async function testConnection(flags: TestFlags, out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  if (flags.tenants !== undefined) return testTenants(flags, out, err);
  const runtime = await createRuntime(flags, { retry: quickRetryPolicy });
  try {
    await runtime.tokens.getToken();
    const subscriptions = await runtime.api.listSubscriptions();
    const enabled = subscriptions.filter((s) => s.status === 'enabled').map((s) => s.contentType);
    const { config } = runtime;
    out.write(`Connection successful ${new Date().toISOString()} tenant ${config.tenantId} (${config.cloud}, ${new URL(config.apiRoot).host}${runtime.proxy ? (reachedThroughProxy(runtime.proxy, config.apiRoot) ? ` via proxy ${runtime.proxy.display}` : ', direct: NO_PROXY names it') : ''}); `
      + `enabled subscriptions: ${enabled.length ? enabled.join(', ') : 'none yet (run `npx o365-connector subscriptions start`)'}\n`);
    const contentFailed = await checkContentTypes(runtime, out, err);
    const graphFailed = await checkGraphPermissions(runtime, out, err);
    const sinksFailed = await checkSinks(flags, { telemetry: runtime.telemetry, logger: runtime.logger, proxy: runtime.proxy }, out, err);
    return sinksFailed ? exitCodes.sink : contentFailed || graphFailed ? exitCodes.api : exitCodes.ok;
  } finally {
    await runtime.close();
  }
}

/** Each configured sink checked as `run` will use it: `Sink <name>: ok (...)`, or one error line. True when one failed. */
async function checkSinks(flags: TestFlags, context: Omit<SinkContext, 'env'>, out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<boolean> {
  let failed = false;
  for (const spec of configuredSinkSpecs(flags.sink ?? [], process.env)) {
    const sink = createSink(spec, { env: process.env, ...context });
    try {
      const verified = sink.check ? await sink.check({ abortSignal: AbortSignal.timeout(60_000) }) : 'nothing to check';
      out.write(`Sink ${sink.name}: ok (${verified})\n`);
    } catch (error) {
      failed = true;
      err.write(`${redactSecrets(describeFailure(error).line.replace(/^error: /, `error: sink ${sink.name}: `))}\n`);
    } finally {
      await sink.close().catch(() => {});
    }
  }
  return failed;
}

/** Tenants asked at once by `test --tenants` (each has its own quota; the machine's connections are the bound). */
const tenantsAtOnce = 8;

/**
 * `test --tenants <dir>`: every tenant of the directory as `test` checks one (a token, the subscription list), one line
 * each: `Tenant <id> <domain>: ok (...)` on stdout, or `error: tenant <id> <domain>: CODE: ... Fix: ...` on stderr; a file
 * that cannot be used is one error line naming it. Then the sinks. Exit: 6 when a sink failed, else the code of the
 * first tenant that failed (2 a file, 3 a credential, 4 the API, 5 the network), else 0.
 */
async function testTenants(flags: TestFlags, out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<number> {
  refuseSingleTenantSources(flags);
  const logger = loggerFor(flags);
  const telemetry = new Telemetry();
  const proxy = proxySettings(process.env, flags.proxy);
  const directory = new TenantDirectory(flags.tenants!, { contentTypes: flags.contentTypes });
  const changes = await directory.scan();
  const agents = new HttpAgentsByCaFile({ proxy });
  let exitCode: number = exitCodes.ok;
  try {
    for (const problem of changes.problems) {
      err.write(`${redactSecrets(`error: ${problem.file}: ${problem.error.toLine()}`)}\n`);
      exitCode ||= exitCodes.config;
    }
    if (changes.added.length === 0 && changes.problems.length === 0) {
      throw new ConfigError('--tenants', `${directory.dir} holds no outputs file`, 'write one `pulumi stack output --json --show-secrets` file per tenant into it, named <anything>.json');
    }
    const entries = [...changes.added].sort((a, b) => a.config.tenantId.localeCompare(b.config.tenantId));
    const lines = new Array<{ ok: boolean; text: string; exitCode: number }>(entries.length);
    let next = 0;
    await Promise.all(Array.from({ length: Math.min(tenantsAtOnce, entries.length) }, async () => {
      for (let i = next++; i < entries.length; i = next++) {
        const { config } = entries[i]!;
        const who = `${config.tenantId}${config.tenantDomain ? ` ${config.tenantDomain}` : ''}`;
        const { tokens, api } = createTenantClients(config, { agent: agents.agentFor(config.caFile), logger: logger.child({ tenant: config.tenantId }), telemetry, flags, retry: quickRetryPolicy });
        try {
          await tokens.getToken();
          const enabled = (await api.listSubscriptions()).filter((s) => s.status === 'enabled').map((s) => s.contentType);
          lines[i] = { ok: true, exitCode: exitCodes.ok, text: `Tenant ${who}: ok (${config.cloud}, ${new URL(config.apiRoot).host}; enabled subscriptions: ${enabled.length ? enabled.join(', ') : 'none yet'})` };
        } catch (error) {
          const failure = describeFailure(error);
          lines[i] = { ok: false, exitCode: failure.exitCode, text: redactSecrets(failure.line.replace(/^error: /, `error: tenant ${who}: `)) };
        }
      }
    }));
    for (const line of lines) {
      (line.ok ? out : err).write(`${line.text}\n`);
      if (!line.ok) exitCode ||= line.exitCode;
    }
    out.write(`${lines.filter((line) => line.ok).length} of ${lines.length} tenant(s) ok${changes.problems.length ? `; ${changes.problems.length} file(s) unusable` : ''}\n`);
    const sinksFailed = await checkSinks(flags, { telemetry, logger, proxy }, out, err);
    return sinksFailed ? exitCodes.sink : exitCode;
  } finally {
    await agents.close();
  }
}

/** A window just behind now: listing it asks for exactly what `run` asks for, and costs one request. */
const probeWindowMs = 5 * 60_000;

/**
 * Whether the app may read every audit content type `run` will collect: one listing of a few minutes of each (the
 * service checks the permission before anything else, so DLP.All without ActivityFeed.ReadDlp answers AF10001 here,
 * not first in `run`). A subscription not started yet is fine: `run` starts it. One line per content type the app may
 * not read, with the permission and the fix; true when one is missing.
 */
async function checkContentTypes(runtime: Runtime, out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<boolean> {
  const readable: string[] = [];
  let failed = false;
  for (const contentType of auditTypesOf(runtime.config.contentTypes)) {
    const end = new Date(Date.now() + runtime.api.clockSkewMs - 60_000);
    try {
      for await (const _page of runtime.api.listContent(contentType, { start: new Date(end.getTime() - probeWindowMs), end })) break;
      readable.push(contentType);
    } catch (error) {
      if (error instanceof ActivityApiError && notStartedCodes.has(error.code)) {
        readable.push(contentType);
        continue;
      }
      if (!(error instanceof ActivityApiError && error.code === 'AF10001')) throw error;
      err.write(`${redactSecrets(describeFailure(error).line)}\n`);
      failed = true;
    }
  }
  if (readable.length > 0) out.write(`Content types the app may read: ${readable.join(', ')}\n`);
  return failed;
}

/** A subscription never started (AF20022) or disabled (AF20023): not a permission problem, and `run` starts it. */
const notStartedCodes = new Set([subscriptionMissingCode, 'AF20023']);

/**
 * Whether the app may read service health from Microsoft Graph: one item of issues (ServiceHealth.Read.All) and of
 * messages (ServiceMessage.Read.All), with a token for the cloud's Graph. A missing permission is one line with the fix:
 * an error (and a failed `test`) when ServiceHealth is to be collected, a warning otherwise. True when `test` must fail.
 */
async function checkGraphPermissions(runtime: Runtime, out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<boolean> {
  const collected = runtime.config.contentTypes.includes(serviceHealth);
  const level = collected ? 'error' : 'warning';
  const host = new URL(runtime.config.graphRoot).host;
  const granted: string[] = [];
  let failed = false;
  for (const resource of ['issues', 'messages'] as const satisfies readonly AnnouncementKind[]) {
    const permission = graphPermissionOf[resource];
    try {
      // Not collected: a hint only, so a Graph the network blocks costs `test` seconds, not minutes.
      await runtime.graph.probe(resource, { abortSignal: AbortSignal.timeout(collected ? 60_000 : 10_000) });
      granted.push(permission);
    } catch (error) {
      const line = describeFailure(error).line.replace(/^error: /, '');
      if (error instanceof GraphApiError && error.code === graphForbiddenCode) {
        err.write(`${level}: ${redactSecrets(line)}\n`);
      } else {
        err.write(`${level}: Microsoft Graph (${host}) could not be checked for ${permission}: ${redactSecrets(line)}\n`);
      }
      failed ||= collected;
      // One failure of the token or the network says it for both.
      if (!(error instanceof GraphApiError && error.code === graphForbiddenCode)) break;
    }
  }
  if (granted.length > 0) {
    out.write(`Microsoft Graph (${host}): ${granted.map((permission) => `${permission} granted`).join(', ')}; service health ${collected ? 'is collected' : `is not collected (add ${serviceHealth} to --content-types)`}\n`);
  }
  return failed;
}
