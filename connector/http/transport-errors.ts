import { ConnectorError } from '../core/errors.ts';

/** A failure below HTTP: the endpoint could not be reached, the connection broke, or TLS did not verify. */
export class TransportError extends ConnectorError {}

const tlsCodes = /^(CERT_|UNABLE_TO_|SELF_SIGNED|DEPTH_ZERO|ERR_TLS|ERR_SSL|HOSTNAME_MISMATCH)/;
const lookupCodes = new Set(['ENOTFOUND', 'EAI_AGAIN']);

type ErrorLike = { code?: unknown; message?: unknown; cause?: { code?: unknown; message?: unknown } };

/** The socket's or TLS layer's code (ECONNRESET when it gave none) and the first line of its message. */
function readCause(cause: unknown): { error: ErrorLike; inner: ErrorLike; code: string; detail: string } {
  const error = cause as ErrorLike;
  const inner = typeof error.code === 'string' ? error : (error.cause ?? error);
  const code = typeof inner.code === 'string' && inner.code !== '' ? inner.code : 'ECONNRESET';
  return { error, inner, code, detail: (typeof inner.message === 'string' ? inner.message : String(cause)).split('\n')[0]!.trim() };
}

/**
 * Turns an error from undici or Node's TLS layer on the way to Microsoft (or the proxy) into one line that names the
 * host and says what to do. Certificate failures are never retried (retrying cannot make an untrusted certificate
 * trusted); resets, refusals and timeouts are.
 */
export function transportError(cause: unknown, url: string): TransportError {
  const { error, inner, code, detail: line } = readCause(cause);
  // Node's own advice after ';' (e.g. --use-system-ca) is left out: the fix below says what to do here.
  const detail = line.split(';')[0]!.trim();
  let host = url;
  try {
    host = new URL(url).host;
  } catch {
    // keep the raw text: it is only used in the message
  }
  // undici's proxy agent: the proxy answered the CONNECT with something else than 200.
  const proxyStatus = /Proxy response \((\d{3})\)/.exec(`${String(error.message ?? '')} ${String(inner.message ?? '')}`)?.[1];
  // 407 as the standard says; some proxies (tinyproxy) answer a CONNECT with wrong credentials 401.
  if (proxyStatus === '407' || proxyStatus === '401') {
    return new TransportError('PROXY_AUTH', `the proxy answered HTTP ${proxyStatus} to the CONNECT to ${host}: its credentials are missing or wrong`, {
      fix: 'give the proxy user and password in the proxy URL or in O365_PROXY_USERNAME and O365_PROXY_PASSWORD', cause,
    });
  }
  if (proxyStatus !== undefined) {
    return new TransportError('PROXY_REFUSED', `the proxy answered HTTP ${proxyStatus} to the CONNECT to ${host}: it does not let the connection through`, {
      fix: `the proxy's allow-list must let CONNECT through to ${host} (and to the identity platform and Management API hosts of the configured cloud, all on port 443), or add the host to NO_PROXY if it is reached directly`, cause,
    });
  }
  // Marked by the proxy agent (http-agent.ts): the connection that failed was the one to the proxy.
  const proxy = (error as { unreachableProxy?: unknown }).unreachableProxy ?? (inner as { unreachableProxy?: unknown }).unreachableProxy;
  if (typeof proxy === 'string') {
    return new TransportError('PROXY_UNREACHABLE', `cannot reach the proxy ${proxy} on the way to ${host}: ${detail}`, {
      fix: 'start the proxy, or correct --proxy / O365_PROXY / HTTPS_PROXY; a host reached directly goes in NO_PROXY', retryable: true, cause,
    });
  }
  if (tlsCodes.test(code)) {
    return new TransportError(code, `the TLS certificate of ${host} is not trusted: ${detail}`, {
      fix: 'add the CA that issued it with NODE_EXTRA_CA_CERTS=<pem file> or caFile in the outputs file (both add to the default roots; verification is never switched off)',
      cause,
    });
  }
  if (lookupCodes.has(code)) {
    return new TransportError(code, `cannot resolve ${host}: ${detail}`, {
      fix: 'check DNS/proxy access and that cloud, authorityHost and apiRoot match your tenant', retryable: true, cause,
    });
  }
  return new TransportError(code, `cannot reach ${host}: ${detail}`, {
    fix: 'check network access and firewall/proxy rules to the endpoint, and that cloud, authorityHost and apiRoot match your tenant',
    retryable: true,
    cause,
  });
}

/**
 * The same failure on the way to a sink, named by the sink's `destination`: a certificate that does not verify is not
 * retryable (waiting cannot make it trusted, so the run ends with the fix); refusals, resets and timeouts are.
 */
export function sinkTransportError(cause: unknown, destination: string): TransportError {
  const { code, detail } = readCause(cause);
  if (tlsCodes.test(code)) {
    return new TransportError(code, `the TLS certificate of ${destination} does not verify: ${detail}`, {
      fix: 'point ca= at the PEM file of the CA that issued the collector\'s certificate (it replaces the system roots for this sink), and address the collector by a name its certificate holds',
      cause,
    });
  }
  return new TransportError(code, `cannot deliver to ${destination}: ${detail}`, {
    fix: 'check that the collector is up and listening there and that no firewall blocks the port',
    retryable: true,
    cause,
  });
}
