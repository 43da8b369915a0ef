import { readFileSync } from 'node:fs';
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { ConfidentialClientApplication, LogLevel, type Configuration } from '@azure/msal-node';
import type { Dispatcher } from 'undici';
import { ConfigError, ConnectorError } from '../errors.ts';
import type { Logger } from '../status/log.ts';
import { aadstsCodeOf, credentialRejectedCodes, identityError } from './aadsts-errors.ts';
import { UndiciNetworkClient } from './undici-network-client.ts';

export type ClientCredential =
  | { readonly kind: 'secret'; readonly secret: string }
  | { readonly kind: 'certificate'; readonly path: string };

export interface TokenProvider {
  /** A valid access token for the Management Activity API, from cache until shortly before expiry. */
  getToken(): Promise<string>;
  /** Forget the cached token (the API answered 401), so the next getToken asks the identity platform. */
  invalidate(): void;
}

export interface MsalTokenProviderOptions {
  readonly tenantId: string;
  readonly clientId: string;
  readonly credential: ClientCredential;
  readonly authorityHost: string;
  readonly apiRoot: string;
  readonly dispatcher: Dispatcher;
  readonly logger?: Logger;
  /** Re-reads the configuration source; used once when the credential is rejected (rotation by stack update). */
  readonly reloadCredential?: () => Promise<ClientCredential | undefined>;
}

function sameCredential(a: ClientCredential, b: ClientCredential): boolean {
  return a.kind === b.kind && (a.kind === 'secret' ? a.secret === (b as typeof a).secret : a.path === (b as typeof a).path);
}

function certificateCredential(path: string): NonNullable<Configuration['auth']['clientCertificate']> {
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError('clientCertificatePath', `cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`, 'point O365_CLIENT_CERTIFICATE_PATH at a PEM file holding the private key and the certificate');
  }
  const certificate = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem)?.[0];
  const key = /-----BEGIN (?:RSA |EC )?PRIVATE KEY-----[\s\S]+?-----END (?:RSA |EC )?PRIVATE KEY-----/.exec(pem)?.[0];
  if (!certificate || !key) {
    throw new ConfigError('clientCertificatePath', `${path} must hold both a PRIVATE KEY and a CERTIFICATE in PEM`, 'concatenate the key and the certificate into one file');
  }
  const der = new X509Certificate(certificate).raw;
  return {
    thumbprintSha256: createHash('sha256').update(der).digest('hex'),
    privateKey: createPrivateKey(key).export({ type: 'pkcs8', format: 'pem' }).toString(),
    x5c: certificate,
  };
}

export class MsalTokenProvider implements TokenProvider {
  readonly #options: MsalTokenProviderOptions;
  #credential: ClientCredential;
  #client: ConfidentialClientApplication;
  #network: UndiciNetworkClient;
  #skipCache = false;

  constructor(options: MsalTokenProviderOptions) {
    this.#options = options;
    this.#credential = options.credential;
    this.#network = new UndiciNetworkClient(options.dispatcher);
    this.#client = this.#createClient();
  }

  #createClient(): ConfidentialClientApplication {
    const { tenantId, clientId, authorityHost, logger } = this.#options;
    const host = new URL(authorityHost).host;
    const credential = this.#credential;
    return new ConfidentialClientApplication({
      auth: {
        clientId,
        authority: `${authorityHost}/${tenantId}`,
        // Hosts other than Microsoft's (the local stand-in, private clouds) are trusted explicitly instead of discovered.
        knownAuthorities: [host],
        ...(credential.kind === 'secret' ? { clientSecret: credential.secret } : { clientCertificate: certificateCredential(credential.path) }),
      },
      system: {
        networkClient: this.#network,
        loggerOptions: {
          piiLoggingEnabled: false,
          logLevel: LogLevel.Warning,
          loggerCallback: (_level, message) => logger?.debug({ component: 'msal' }, message),
        },
      },
    });
  }

  invalidate(): void {
    this.#skipCache = true;
  }

  async getToken(): Promise<string> {
    try {
      return await this.#acquire();
    } catch (error) {
      const code = error instanceof ConnectorError ? error.code.replace('AADSTS', '') : undefined;
      if (code && credentialRejectedCodes.has(code) && this.#options.reloadCredential) {
        const reloaded = await this.#options.reloadCredential();
        if (reloaded && !sameCredential(reloaded, this.#credential)) {
          this.#options.logger?.info({ component: 'auth' }, 'credential rejected; using the rotated credential from the configuration source');
          this.#credential = reloaded;
          this.#client = this.#createClient();
          return await this.#acquire();
        }
      }
      throw error;
    }
  }

  async #acquire(): Promise<string> {
    const skipCache = this.#skipCache;
    this.#skipCache = false;
    let result;
    try {
      result = await this.#client.acquireTokenByClientCredential({ scopes: [`${this.#options.apiRoot}/.default`], skipCache });
    } catch (error) {
      const transport = this.#network.lastTransportError;
      if (transport && !(error instanceof ConnectorError) && !aadstsCodeOf(String((error as { errorMessage?: string }).errorMessage ?? ''))) {
        throw networkError(transport.code, transport.message);
      }
      throw toConnectorError(error);
    }
    if (!result?.accessToken) throw new ConnectorError('AUTH_FAILED', 'the identity platform returned no access token');
    return result.accessToken;
  }
}

function toConnectorError(error: unknown): ConnectorError {
  if (error instanceof ConnectorError) return error;
  const err = error as { errorCode?: string; errorMessage?: string; message?: string; cause?: unknown; code?: string };
  const text = `${err.errorMessage ?? ''} ${err.message ?? ''}`;
  const code = aadstsCodeOf(text);
  if (code) return identityError(code, text.trim());
  const cause = (err.cause ?? error) as { code?: string; message?: string };
  const networkCode = cause.code ?? err.code;
  if (networkCode && /^(UND_ERR|ECONN|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|CERT_|UNABLE_TO|SELF_SIGNED|DEPTH_ZERO|ERR_TLS)/.test(networkCode)) {
    return networkError(networkCode, cause.message ?? text);
  }
  return identityError(undefined, text.trim() || String(error));
}

export function networkError(code: string, detail: string): ConnectorError {
  if (/CERT|UNABLE_TO|SELF_SIGNED|DEPTH_ZERO|ERR_TLS/.test(code)) {
    return new ConnectorError(code, `the server's TLS certificate is not trusted (${detail}).`, { fix: 'add its CA with NODE_EXTRA_CA_CERTS=<pem file> or caFile in the outputs file; verification is never switched off', retryable: false });
  }
  return new ConnectorError(code, `cannot reach the endpoint (${detail}).`, { fix: 'check network access, proxy and the authorityHost/apiRoot for your cloud', retryable: true });
}
