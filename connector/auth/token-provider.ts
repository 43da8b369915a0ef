/**
 * Access tokens for the Management Activity API through msal-node: its ConfidentialClientApplication for an app's
 * credential (client secret; certificate with a SHA-256 thumbprint; federated token as a client assertion callback, so
 * the token file is read for every token request), its ManagedIdentityApplication for the managed identity of the
 * Azure host (App Service, Container Apps and Functions through IDENTITY_ENDPOINT, VMs through the instance metadata
 * endpoint). The app's HTTP goes on the same undici agent as the API client; the host's identity endpoint, which is
 * local, never through a proxy.
 * msal caches the token and fetches a new one 5 minutes before expiry; on top of that this provider keeps the
 * last token in memory (one await instead of an msal cache lookup per request), lets only one acquisition
 * run at a time, and, when the identity platform rejects the credential, re-reads the configuration source
 * once so that a secret rotated by `pulumi up` is picked up without a restart.
 */
import type { ClientCredential } from '../config/credential.ts';
import { maxSettingFileBytes, readSmallFile } from '../core/small-file.ts';
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { ConfidentialClientApplication, LogLevel, ManagedIdentityApplication, type AuthenticationResult, type Configuration } from '@azure/msal-node';
import type { Dispatcher } from 'undici';
import type { TokenSource } from '../http/exchange.ts';
import { ConfigError, ConnectorError } from '../core/errors.ts';
import type { Logger } from '../observe/log.ts';
import { aadstsCodeOf, credentialRejectedCodes, identityError, IdentityError } from './aadsts-errors.ts';
import { UndiciNetworkClient, wireRecords, type WireRecord } from './undici-network-client.ts';
import { readFederatedToken } from './federated-token.ts';
import { managedIdentityRefusal } from './managed-identity-errors.ts';

export interface MsalTokenProviderOptions {
  readonly tenantId: string;
  /** The app's client id, or the user-assigned managed identity's; undefined for a system-assigned managed identity. */
  readonly clientId: string | undefined;
  readonly credential: ClientCredential;
  readonly authorityHost: string;
  readonly apiRoot: string;
  readonly dispatcher: Dispatcher;
  /** For the host's managed identity endpoint (local: never through the proxy); `dispatcher` when not given. */
  readonly identityEndpointDispatcher?: Dispatcher;
  readonly logger?: Logger;
  /** Re-reads the configuration source; called once when the credential is rejected (rotation by stack update). */
  readonly reloadCredential?: () => Promise<ClientCredential | undefined>;
}

/** A new token is fetched when the cached one has less than this left (as msal does). */
const renewBeforeExpiryMs = 5 * 60_000;

type MsalCertificate = NonNullable<Configuration['auth']['clientCertificate']>;

/** An app credential as msal's confidential client takes it; a managed identity has none. */
type AppAuth = { clientSecret: string } | { clientCertificate: MsalCertificate } | { clientAssertion: () => Promise<string> };

interface LoadedCredential {
  readonly credential: ClientCredential;
  /** Secret value, the PEM file's content, the token file's path: what "changed after a rotation" compares. */
  readonly fingerprint: string;
  readonly auth: AppAuth | undefined;
}

async function loadCredential(credential: ClientCredential): Promise<LoadedCredential> {
  switch (credential.kind) {
    case 'secret': return { credential, fingerprint: credential.secret, auth: { clientSecret: credential.secret } };
    case 'federated': return { credential, fingerprint: `federated:${credential.tokenFile}`, auth: { clientAssertion: () => readFederatedToken(credential.tokenFile) } };
    case 'managedIdentity': return { credential, fingerprint: 'managedIdentity', auth: undefined };
    case 'certificate': break;
  }
  let pem: string;
  try {
    pem = readSmallFile(credential.path, maxSettingFileBytes).toString('utf8');
  } catch (error) {
    throw new ConfigError('clientCertificatePath', `${credential.path} ${(error as Error).message}`, 'point O365_CLIENT_CERTIFICATE_PATH at a PEM file holding the private key and the certificate');
  }
  const certificate = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(pem)?.[0];
  const key = /-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----[\s\S]+?-----END (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----/.exec(pem)?.[0];
  if (!certificate || !key) {
    throw new ConfigError('clientCertificatePath', `${credential.path} must hold both a PRIVATE KEY and a CERTIFICATE in PEM`, 'concatenate the unencrypted private key and the certificate into one file');
  }
  let privateKey: string;
  let thumbprintSha256: string;
  try {
    thumbprintSha256 = createHash('sha256').update(new X509Certificate(certificate).raw).digest('hex');
    privateKey = createPrivateKey(key).export({ type: 'pkcs8', format: 'pem' }).toString();
  } catch (error) {
    throw new ConfigError('clientCertificatePath', `${credential.path} does not hold a usable key and certificate (${(error as Error).message.split('\n')[0]})`, 'give an unencrypted PEM private key and its X.509 certificate');
  }
  return { credential, fingerprint: pem, auth: { clientCertificate: { thumbprintSha256, privateKey, x5c: certificate } } };
}

/** One token request of the credential's msal application; `skipCache` forces a new token. */
type TokenClient = (skipCache: boolean) => Promise<AuthenticationResult | null>;

export class MsalTokenProvider implements TokenSource {
  readonly #options: MsalTokenProviderOptions;
  readonly #network: UndiciNetworkClient;
  #loaded: Promise<LoadedCredential>;
  #client: Promise<TokenClient>;
  #cached: { token: string; expiresAt: number } | undefined;
  #pending: Promise<string> | undefined;
  #skipCache = false;

  constructor(options: MsalTokenProviderOptions) {
    this.#options = options;
    this.#network = new UndiciNetworkClient(options.dispatcher);
    this.#loaded = loadCredential(options.credential);
    this.#client = this.#loaded.then((loaded) => this.#createClient(loaded));
    // Errors surface on the first getToken; do not let an unread rejection end the process.
    this.#client.catch(() => {});
  }

  /** What tokens are asked for: the resource's `/.default` scope (the Management API's, or Microsoft Graph's). */
  get scope(): string {
    return `${this.#options.apiRoot}/.default`;
  }

  /** Where they are asked: the tenant's authority in the cloud's identity platform. */
  get authority(): string {
    return `${this.#options.authorityHost}/${this.#options.tenantId}`;
  }

  #createClient(loaded: LoadedCredential): TokenClient {
    const { clientId, authorityHost, logger, dispatcher, identityEndpointDispatcher } = this.#options;
    const loggerOptions = {
      piiLoggingEnabled: false,
      logLevel: LogLevel.Warning,
      loggerCallback: (_level: LogLevel, message: string) => logger?.debug({ component: 'msal' }, message),
    };
    if (!loaded.auth) {
      // User-assigned when a client id is configured; the host's system-assigned identity otherwise.
      const app = new ManagedIdentityApplication({
        ...(clientId ? { managedIdentityIdParams: { userAssignedClientId: clientId } } : {}),
        system: { networkClient: new UndiciNetworkClient(identityEndpointDispatcher ?? dispatcher), loggerOptions },
      });
      return (skipCache) => app.acquireToken({ resource: this.#options.apiRoot, forceRefresh: skipCache });
    }
    if (!clientId) throw new ConfigError('clientId', 'missing', 'set clientId (outputs file, O365_CLIENT_ID or AZURE_CLIENT_ID)');
    const app = new ConfidentialClientApplication({
      auth: {
        clientId,
        authority: this.authority,
        // Trusted as given: the local stand-in and private clouds cannot be found by Microsoft's instance discovery.
        knownAuthorities: [new URL(authorityHost).host],
        ...loaded.auth,
      },
      system: { networkClient: this.#network, loggerOptions },
    });
    return (skipCache) => app.acquireTokenByClientCredential({ scopes: [this.scope], skipCache });
  }

  /**
   * Uses `credential` from now on when it differs from the current one (a fleet's tenant file changed: a rotated
   * secret is put to use at once, while the old one still works, so a wrong new one shows before the old expires).
   */
  async useCredential(credential: ClientCredential): Promise<boolean> {
    const loaded = await loadCredential(credential);
    if (loaded.fingerprint === (await this.#loaded.catch(() => undefined))?.fingerprint) return false;
    this.#loaded = Promise.resolve(loaded);
    this.#client = Promise.resolve(this.#createClient(loaded));
    this.#cached = undefined;
    return true;
  }

  invalidate(token?: string): void {
    if (token !== undefined && this.#cached !== undefined && this.#cached.token !== token) return;
    this.#cached = undefined;
    this.#skipCache = true;
  }

  getToken(options: { abortSignal?: AbortSignal | undefined } = {}): Promise<string> {
    options.abortSignal?.throwIfAborted();
    if (this.#cached && this.#cached.expiresAt - Date.now() > renewBeforeExpiryMs) return Promise.resolve(this.#cached.token);
    // One acquisition at a time: a burst of requests after expiry must not become a burst of token requests.
    this.#pending ??= this.#acquireWithReload().finally(() => { this.#pending = undefined; });
    return this.#pending;
  }

  async #acquireWithReload(): Promise<string> {
    try {
      return await this.#acquire();
    } catch (error) {
      const code = error instanceof IdentityError ? aadstsCodeOf(error.code) : undefined;
      if (code === undefined || !credentialRejectedCodes.has(code) || !this.#options.reloadCredential) throw error;
      const credential = await this.#options.reloadCredential().catch(() => undefined);
      if (!credential || !(await this.useCredential(credential).catch(() => false))) throw error;
      this.#options.logger?.info({ component: 'auth', rejected: `AADSTS${code}` }, 'credential rejected; trying the credential now in the configuration source');
      return await this.#acquire();
    }
  }

  async #acquire(): Promise<string> {
    const client = await this.#client;
    const { credential } = await this.#loaded;
    const skipCache = this.#skipCache;
    this.#skipCache = false;
    const record: WireRecord = {};
    let result;
    try {
      result = await wireRecords.run(record, () => client(skipCache));
    } catch (error) {
      if (skipCache) this.#skipCache = true;
      if (credential.kind === 'managedIdentity' && !(error instanceof ConnectorError)) throw managedIdentityRefusal(error, record);
      throw explain(error, record);
    }
    if (!result?.accessToken) throw new IdentityError('AUTH_FAILED', 'the identity platform returned no access token', { fix: 'retry; if it persists, check authorityHost' });
    this.#cached = { token: result.accessToken, expiresAt: result.expiresOn?.getTime() ?? Date.now() + 10 * 60_000 };
    return result.accessToken;
  }
}

/** The user-facing cause of an msal failure: the AADSTS code it carries, the wire failure it hid, or its own words. */
function explain(error: unknown, record: WireRecord): ConnectorError {
  if (error instanceof ConnectorError) return error;
  const err = error as { errorCode?: string; errorMessage?: string; message?: string };
  const text = `${err.errorMessage ?? ''} ${err.message ?? ''}`;
  const code = aadstsCodeOf(text);
  if (code) return identityError(code, err.errorMessage ?? text);
  if (record.transport) return record.transport;
  const refused = record.refusal?.body as { error_description?: unknown; error_codes?: unknown } | undefined;
  const refusedText = typeof refused?.error_description === 'string' ? refused.error_description : '';
  const refusedCode = aadstsCodeOf(refusedText) ?? (Array.isArray(refused?.error_codes) ? String(refused.error_codes[0]) : undefined);
  if (refusedCode) return identityError(refusedCode, refusedText);
  if (record.refusal) return identityError(undefined, `HTTP ${record.refusal.status} from the authority (${err.errorCode ?? 'no code'})`);
  return identityError(undefined, err.errorCode ? `${err.errorCode}: ${(err.errorMessage ?? '').split('\n')[0]}` : String(error));
}
