/**
 * `--listen-token-env VAR`: the token every path of the `--listen` server asks for, except `/livez` and `/readyz`
 * (the page shows tenant names, and /metrics labels them). Sent as `Authorization: Bearer <token>` (Prometheus'
 * `authorization.credentials_file`, curl), or as the password of HTTP Basic authentication, any user name, so that a
 * browser asks for it in its own login prompt.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

export const listenRealm = 'o365-connector';

/** The challenges of a 401: Basic is the one a browser can answer. */
export const listenChallenges = [`Bearer realm="${listenRealm}"`, `Basic realm="${listenRealm}", charset="UTF-8"`];

/** The request carries the token (compared in constant time). */
export function carriesToken(headers: IncomingHttpHeaders, token: string): boolean {
  const header = headers.authorization ?? '';
  const match = /^(Bearer|Basic)\s+(\S+)\s*$/i.exec(header);
  if (!match) return false;
  let given = match[2]!;
  if (match[1]!.toLowerCase() === 'basic') {
    const decoded = Buffer.from(given, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon === -1) return false;
    given = decoded.slice(colon + 1);
  }
  return timingSafeEqual(digest(given), digest(token));
}

const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest();
