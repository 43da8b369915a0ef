/**
 * A test OIDC issuer for workload identity federation: an RSA key pair and the tokens it signs (RS256, with `kid`), as a
 * Kubernetes service account issuer or GitHub Actions signs theirs. The stand-in trusts it (`trustIssuer`) as Entra ID
 * trusts an issuer whose published keys it fetched.
 */
import { generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto';

/** The audience Entra ID expects in a federated token, by convention. */
export const tokenExchangeAudience = 'api://AzureADTokenExchange';

export interface TestIssuer {
  /** The `iss` of its tokens (an https URL). */
  readonly issuer: string;
  readonly kid: string;
  readonly publicKey: KeyObject;
  /** A token for `subject`, valid from `notBefore` until `expires` (default audience api://AzureADTokenExchange). */
  token(claims: { subject: string; audience?: string; notBefore: Date; expires: Date }): string;
}

export function createTestIssuer(issuer = 'https://oidc.test-cluster.example/issuer'): TestIssuer {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = randomUUID();
  return {
    issuer, kid, publicKey,
    token({ subject, audience = tokenExchangeAudience, notBefore, expires }) {
      const header = Buffer.from(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid })).toString('base64url');
      const seconds = (date: Date) => Math.floor(date.getTime() / 1000);
      const payload = Buffer.from(JSON.stringify({ iss: issuer, sub: subject, aud: [audience], iat: seconds(notBefore), nbf: seconds(notBefore), exp: seconds(expires), jti: randomUUID() })).toString('base64url');
      const signature = sign('sha256', Buffer.from(`${header}.${payload}`), privateKey).toString('base64url');
      return `${header}.${payload}.${signature}`;
    },
  };
}
