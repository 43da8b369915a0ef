import { serviceHealth } from '../../contract/content-types.ts';
import type { RunConfiguration } from '../config/run-config.ts';
import { ConfigError } from '../core/errors.ts';
import { reachedThroughProxy } from '../http/proxy.ts';
import { loggerFor } from '../observe/log.ts';
import { redactSecrets } from '../observe/secret-values.ts';
import { Telemetry } from '../observe/telemetry.ts';
import { checkAuditSearch, checkConnection, checkConnections, checkContentTypes, checkGraphPermissions, quickRetryPolicy } from '../run/tenant-check.ts';
import { graphAuditSearchPermission } from '../../contract/clouds.ts';
import { TenantRuntimes, type TenantRuntime } from '../run/tenant-runtimes.ts';
import { sinkIdentityOf } from '../run/sink-identity.ts';
import { tenantSourceOf } from '../run/tenants.ts';
import { createSink, type SinkContext } from '../sinks/spec.ts';
import { describeFailure, exitCodes } from './exit-codes.ts';

type Out = NodeJS.WritableStream;

/**
 * `test`: acquire a token and list subscriptions ("Connection successful <ISO time>" on stdout, or a thrown
 * ConnectorError), then check each configured sink the way `run` will use it: one line each, `Sink <name>: ok (...)`
 * on stdout or `error: sink <name>: CODE: ... Fix: ...` on stderr; exit 6 when a sink failed. Between the two, whether the
 * Microsoft Graph permissions for service health are granted (one line each missing, with the fix; exit 4 when
 * ServiceHealth is to be collected and one is missing).
 *
 * `test --tenants <dir>`: every tenant of the directory as `test` checks one (a token, the subscription list), one line
 * each: `Tenant <id> <domain>: ok (...)` on stdout, or `error: tenant <id> <domain>: CODE: ... Fix: ...` on stderr; a file
 * that cannot be used is one error line naming it. Then the sinks. Exit: 6 when a sink failed, else the code of the
 * first tenant that failed (2 a file, 3 a credential, 4 the API, 5 the network), else 0.
 */
export async function testConnection(config: RunConfiguration, out: Out = process.stdout, err: Out = process.stderr): Promise<number> {
  const logger = loggerFor(config);
  const telemetry = new Telemetry();
  const tenants = await tenantSourceOf(config.tenants);
  const changes = await tenants.scan();
  const runtimes = new TenantRuntimes({ proxy: config.proxy, logger, telemetry, settings: config.settings, retry: quickRetryPolicy, oneTenant: tenants.fixed !== undefined });
  try {
    await runtimes.apply(changes);
    let exitCode: number = exitCodes.ok;
    if (tenants.fixed) {
      exitCode = await testOne(runtimes.all()[0]!, config, out, err);
    } else {
      for (const problem of changes.problems) {
        err.write(`${redactSecrets(`error: ${problem.file}: ${problem.error.toLine()}`)}\n`);
        exitCode ||= exitCodes.config;
      }
      if (changes.added.length === 0 && changes.problems.length === 0) {
        throw new ConfigError('--tenants', `${tenants.description} holds no outputs file`, 'write one `pulumi stack output --json --show-secrets` file per tenant into it, named <anything>.json');
      }
      const results = await checkConnections(runtimes.all().sort((a, b) => a.tenant.localeCompare(b.tenant)));
      for (const result of results) {
        const { config: tenant } = result.runtime.entry;
        const who = `${tenant.tenantId}${tenant.tenantDomain ? ` ${tenant.tenantDomain}` : ''}`;
        if ('enabled' in result) {
          out.write(`Tenant ${who}: ok (${tenant.cloud}, ${new URL(tenant.apiRoot).host}; enabled subscriptions: ${result.enabled.length ? result.enabled.join(', ') : 'none yet'})\n`);
        } else {
          const failure = describeFailure(result.error);
          err.write(`${redactSecrets(failure.line.replace(/^error: /, `error: tenant ${who}: `))}\n`);
          exitCode ||= failure.exitCode;
        }
      }
      out.write(`${results.filter((result) => 'enabled' in result).length} of ${results.length} tenant(s) ok${changes.problems.length ? `; ${changes.problems.length} file(s) unusable` : ''}\n`);
    }
    const sinksFailed = await checkSinks(config, { telemetry, logger, proxy: config.proxy, identity: sinkIdentityOf(tenants.fixed, logger) }, out, err);
    return sinksFailed ? exitCodes.sink : exitCode;
  } finally {
    await runtimes.close();
  }
}

/** One tenant: the connection line, the content types, the Graph permissions; 4 when one is missing, else 0 (a refused connection is thrown). */
async function testOne(runtime: TenantRuntime, config: RunConfiguration, out: Out, err: Out): Promise<number> {
  const tenant = runtime.entry.config;
  const enabled = await checkConnection(runtime);
  const { proxy } = config;
  out.write(`Connection successful ${new Date().toISOString()} tenant ${tenant.tenantId} (${tenant.cloud}, ${new URL(tenant.apiRoot).host}${proxy ? (reachedThroughProxy(proxy, tenant.apiRoot) ? ` via proxy ${proxy.display}` : ', direct: NO_PROXY names it') : ''}); `
    + `enabled subscriptions: ${enabled.length ? enabled.join(', ') : 'none yet (run `npx o365-connector subscriptions start`)'}\n`);
  const content = await checkContentTypes(runtime);
  for (const error of content.refused) err.write(`${redactSecrets(describeFailure(error).line)}\n`);
  if (content.readable.length > 0) out.write(`Content types the app may read: ${content.readable.join(', ')}\n`);
  const graph = await checkGraphPermissions(runtime);
  const level = graph.collected ? 'error' : 'warning';
  for (const problem of graph.problems) {
    const line = describeFailure(problem.error).line.replace(/^error: /, '');
    err.write(problem.forbidden ? `${level}: ${redactSecrets(line)}\n` : `${level}: Microsoft Graph (${graph.host}) could not be checked for ${problem.permission}: ${redactSecrets(line)}\n`);
  }
  if (graph.granted.length > 0) {
    out.write(`Microsoft Graph (${graph.host}): ${graph.granted.map((permission) => `${permission} granted`).join(', ')}; service health ${graph.collected ? 'is collected' : `is not collected (add ${serviceHealth} to --content-types)`}\n`);
  }
  const history = await checkAuditSearch(runtime);
  if (history && 'unavailable' in history) out.write(`History beyond 7 days: not read: ${history.unavailable}\n`);
  else if (history?.granted) out.write(`History beyond 7 days: ${graphAuditSearchPermission} granted (the audit search reads what the API no longer lists)\n`);
  else if (history) {
    const line = redactSecrets(describeFailure(history.error).line.replace(/^error: /, ''));
    err.write(history.forbidden ? `warning: ${line}\n` : `warning: the audit search (history beyond 7 days) could not be checked: ${line}\n`);
  }
  return content.refused.length > 0 || (graph.collected && graph.problems.length > 0) ? exitCodes.api : exitCodes.ok;
}

/** Each configured sink checked as `run` will use it: `Sink <name>: ok (...)`, or one error line. True when one failed. */
async function checkSinks(config: RunConfiguration, context: Omit<SinkContext, 'env'>, out: Out, err: Out): Promise<boolean> {
  let failed = false;
  for (const spec of config.sinks) {
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
