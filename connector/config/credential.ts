/**
 * How a tenant's connector proves itself to Entra ID: its app's client secret, a certificate (PEM with the private
 * key), a federated token (an OIDC token from an issuer the app trusts, in a file rewritten before it expires: read
 * for every token request), or the managed identity of the Azure host it runs on (user-assigned when a client id is
 * configured, else system-assigned). Only the first has a secret that expires.
 */
export type ClientCredential =
  | { readonly kind: 'secret'; readonly secret: string }
  | { readonly kind: 'certificate'; readonly path: string }
  | { readonly kind: 'federated'; readonly tokenFile: string }
  | { readonly kind: 'managedIdentity' };

/** The kinds without a secret to rotate: expiry warnings and the expiry metric do not apply to them. */
export function hasNoSecret(credential: ClientCredential): boolean {
  return credential.kind === 'federated' || credential.kind === 'managedIdentity';
}
