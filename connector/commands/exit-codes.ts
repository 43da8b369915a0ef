import { ConnectorError } from '../errors.ts';

/** Exit codes, documented in the README. */
export const exitCodes = {
  ok: 0,
  internal: 1,
  config: 2,
  auth: 3,
  api: 4,
  network: 5,
  degraded: 10,
  inactive: 11,
} as const;

/** The one place that turns an error into the line a user reads and the exit code. Never a stack trace. */
export function describeFailure(error: unknown): { line: string; exitCode: number } {
  if (error instanceof ConnectorError) {
    const code = error.code;
    let exitCode: number = exitCodes.api;
    if (code === 'CONFIG_INVALID' || code.startsWith('STATE_')) exitCode = exitCodes.config;
    else if (code.startsWith('AADSTS') || code === 'AUTH_FAILED') exitCode = exitCodes.auth;
    else if (/^(E[A-Z]+|UND_ERR|CERT_|UNABLE_TO|SELF_SIGNED|DEPTH_ZERO|ERR_TLS)/.test(code)) exitCode = exitCodes.network;
    return { line: `error: ${error.toLine()}`, exitCode };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { line: `internal error: ${message.split('\n')[0]}`, exitCode: exitCodes.internal };
}
