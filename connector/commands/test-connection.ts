import type { RetryPolicyOptions } from '../api/retry-policy.ts';
import { configuredSinkSpecs, createSink } from '../sinks/spec.ts';
import { redactSecrets } from '../status/secret-values.ts';
import { describeFailure, exitCodes } from './exit-codes.ts';
import { createRuntime, type GlobalFlags } from './runtime.ts';

export interface TestFlags extends GlobalFlags {
  /** Sink specs to check too (--sink, repeatable; else O365_SINKS; none: the API alone). */
  readonly sink?: string[] | undefined;
}

/** `test` answers in seconds: a couple of quick retries, not the collector's patient policy. */
export const quickRetryPolicy: RetryPolicyOptions = { maxAttempts: 3, baseDelayMs: 300, maxDelayMs: 2000, maxRetryAfterMs: 5000 };

/**
 * `test`: acquire a token and list subscriptions ("Connection successful <ISO time>" on stdout, or a thrown
 * ConnectorError), then check each configured sink the way `run` will use it: one line each, `Sink <name>: ok (...)`
 * on stdout or `error: sink <name>: CODE: ... Fix: ...` on stderr; exit 6 when a sink failed.
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
    return failed ? exitCodes.sink : exitCodes.ok;
  } finally {
    await runtime.close();
  }
}
