import type { RetryPolicyOptions } from '../api/retry-policy.ts';
import { exitCodes } from './exit-codes.ts';
import { createRuntime, type GlobalFlags } from './runtime.ts';

/** `test` answers in seconds: a couple of quick retries, not the collector's patient policy. */
export const quickRetryPolicy: RetryPolicyOptions = { maxAttempts: 3, baseDelayMs: 300, maxDelayMs: 2000, maxRetryAfterMs: 5000 };

/** `test`: acquire a token and list subscriptions; "Connection successful <ISO time>" on stdout, or a thrown ConnectorError. */
export async function testConnection(flags: GlobalFlags, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const runtime = await createRuntime(flags, { retry: quickRetryPolicy });
  try {
    await runtime.tokens.getToken();
    const subscriptions = await runtime.api.listSubscriptions();
    const enabled = subscriptions.filter((s) => s.status === 'enabled').map((s) => s.contentType);
    const { config } = runtime;
    out.write(`Connection successful ${new Date().toISOString()} tenant ${config.tenantId} (${config.cloud}, ${new URL(config.apiRoot).host}); `
      + `enabled subscriptions: ${enabled.length ? enabled.join(', ') : 'none yet (run `npx o365-connector subscriptions start`)'}\n`);
    return exitCodes.ok;
  } finally {
    await runtime.close();
  }
}
