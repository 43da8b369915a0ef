import { ActivityApiError, unauthorizedCode } from '../sources/activity-api/af-errors.ts';
import { TransportError } from '../http/transport-errors.ts';
import { IdentityError } from '../auth/aadsts-errors.ts';
import { ConfigError, ConnectorError, SinkError } from '../core/errors.ts';

/** Exit codes, documented in docs/connector.md and `o365-connector --help`. */
export const exitCodes = {
  ok: 0,
  /** Internal error, or a failure that fits no category below. */
  internal: 1,
  /** Configuration: a missing or invalid field, flag, outputs file, stack, sink spec or state directory. */
  config: 2,
  /** The identity platform refused a token (AADSTS…), or the API refused every token. */
  auth: 3,
  /** The Management Activity API refused the call (AF…, audit logging off), or retries were exhausted. */
  api: 4,
  /** Network or TLS: host unreachable, DNS, connection reset, untrusted certificate. */
  network: 5,
  /** A sink refused for good: its file is another connector's, or it refuses every batch (token, index, format). */
  sink: 6,
  /** `status`: at least one content type is Degraded (lagging or failing). */
  degraded: 10,
  /** `status`: nothing is being collected (no state, or every content type Inactive). */
  inactive: 11,
  /** Stopped by a second SIGINT/SIGTERM before the graceful stop finished. */
  interrupted: 130,
} as const;

function exitCodeOf(error: ConnectorError): number {
  if (error instanceof ConfigError || error.code === 'CONFIG_INVALID' || error.code.startsWith('STATE_')) return exitCodes.config;
  if (error instanceof IdentityError || (error instanceof ActivityApiError && error.code === unauthorizedCode)) return exitCodes.auth;
  if (error instanceof TransportError) return exitCodes.network;
  if (error instanceof SinkError) return exitCodes.sink;
  if (error instanceof ActivityApiError) return exitCodes.api;
  return exitCodes.internal;
}

/** The one place that turns an error into the line a user reads and the exit code. Never a stack trace. */
export function describeFailure(error: unknown): { line: string; exitCode: number } {
  if (error instanceof ConnectorError) return { line: `error: ${error.toLine()}`, exitCode: exitCodeOf(error) };
  const message = error instanceof Error ? error.message : String(error);
  return { line: `internal error: ${message.split('\n')[0]}`, exitCode: exitCodes.internal };
}
