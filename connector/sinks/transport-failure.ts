import { ConnectorError } from '../core/errors.ts';

const certificateCodes = /^(CERT_|UNABLE_TO_|SELF_SIGNED|DEPTH_ZERO|ERR_TLS|ERR_SSL|HOSTNAME_MISMATCH)/;

/**
 * A sink's connection failure as one line naming the destination. A certificate that does not verify is not
 * retryable (waiting cannot make it trusted, so the run ends with the fix); refusals, resets and timeouts are.
 */
export function transportFailure(cause: unknown, destination: string): ConnectorError {
  const error = cause as { code?: unknown; message?: unknown; cause?: { code?: unknown; message?: unknown } };
  const inner = typeof error.code === 'string' ? error : (error.cause ?? error);
  const code = typeof inner.code === 'string' && inner.code !== '' ? inner.code : 'ECONNRESET';
  const detail = (typeof inner.message === 'string' ? inner.message : String(cause)).split('\n')[0]!.trim();
  if (certificateCodes.test(code)) {
    return new ConnectorError(code, `the TLS certificate of ${destination} does not verify: ${detail}`, {
      fix: 'point ca= at the PEM file of the CA that issued the collector\'s certificate (it replaces the system roots for this sink), and address the collector by a name its certificate holds',
      cause,
    });
  }
  return new ConnectorError(code, `cannot deliver to ${destination}: ${detail}`, {
    fix: 'check that the collector is up and listening there and that no firewall blocks the port',
    retryable: true,
    cause,
  });
}
