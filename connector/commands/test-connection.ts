import type { RetryPolicyOptions } from '../api/retry-policy.ts';
import { serviceHealth } from '../api/content-types.ts';
import { GraphApiError, graphForbiddenCode, graphPermissionOf } from '../graph/graph-errors.ts';
import type { AnnouncementKind } from '../graph/service-health-api.ts';
import { configuredSinkSpecs, createSink } from '../sinks/spec.ts';
import { redactSecrets } from '../status/secret-values.ts';
import { describeFailure, exitCodes } from './exit-codes.ts';
import { createRuntime, type GlobalFlags, type Runtime } from './runtime.ts';

export interface TestFlags extends GlobalFlags {
  /** Sink specs to check too (--sink, repeatable; else O365_SINKS; none: the API alone). */
  readonly sink?: string[] | undefined;
}

/** `test` answers in seconds: a couple of quick retries, not the collector's patient policy. */
export const quickRetryPolicy: RetryPolicyOptions = { maxAttempts: 3, baseDelayMs: 300, maxDelayMs: 2000, maxRetryAfterMs: 5000 };

/**
 * `test`: acquire a token and list subscriptions ("Connection successful <ISO time>" on stdout, or a thrown
 * ConnectorError), then check each configured sink the way `run` will use it: one line each, `Sink <name>: ok (...)`
 * on stdout or `error: sink <name>: CODE: ... Fix: ...` on stderr; exit 6 when a sink failed. Between the two, whether the
 * Microsoft Graph permissions for service health are granted (one line each missing, with the fix; exit 4 when
 * ServiceHealth is to be collected and one is missing).
 */
export async function testConnection(flags: TestFlags, out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  const runtime = await createRuntime(flags, { retry: quickRetryPolicy });
  try {
    await runtime.tokens.getToken();
    const subscriptions = await runtime.api.listSubscriptions();
    const enabled = subscriptions.filter((s) => s.status === 'enabled').map((s) => s.contentType);
    const { config } = runtime;
    out.write(`Connection successful ${new Date().toISOString()} tenant ${config.tenantId} (${config.cloud}, ${new URL(config.apiRoot).host}${runtime.proxy ? ` via proxy ${runtime.proxy.display}` : ''}); `
      + `enabled subscriptions: ${enabled.length ? enabled.join(', ') : 'none yet (run `npx o365-connector subscriptions start`)'}\n`);
    const graphFailed = await checkGraphPermissions(runtime, out, err);
    let failed = false;
    for (const spec of configuredSinkSpecs(flags.sink ?? [], process.env)) {
      const sink = createSink(spec, { env: process.env, telemetry: runtime.telemetry, logger: runtime.logger, proxy: runtime.proxy });
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
    return failed ? exitCodes.sink : graphFailed ? exitCodes.api : exitCodes.ok;
  } finally {
    await runtime.close();
  }
}

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
      await runtime.graph.probe(resource, { abortSignal: AbortSignal.timeout(60_000) });
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
