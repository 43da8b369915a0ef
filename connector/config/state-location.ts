/**
 * `--state` names the store: a directory (the embedded SQLite default) or a PostgreSQL URL (`postgres://…`, a
 * fleet's shared database). One place decides which, for `run`, `test` and `status`.
 */
import { ConnectorError } from '../core/errors.ts';

const defaultStateDir = '.o365-state';

export function isPostgresUrl(state: string): boolean {
  return /^postgres(?:ql)?:\/\//i.test(state.trim());
}

/**
 * A `--state` URL as the command line may give it: without a password, which every user of the machine could read
 * in the process list (as sink specs refuse credentials). The password comes from where PostgreSQL's own tools take it.
 */
export function refusePasswordInStateUrl(state: string): void {
  let password: string;
  try {
    password = new URL(state.trim()).password;
  } catch {
    throw new ConnectorError('CONFIG_INVALID', '--state: the PostgreSQL URL is not a URL', { fix: 'give it as postgresql://user@host:5432/database' });
  }
  if (password === '') return;
  throw new ConnectorError('CONFIG_INVALID', '--state: the PostgreSQL URL holds a password, which every user of this machine can read in the process list', {
    fix: 'remove it from the URL and give it as PGPASSWORD, in a PGPASSFILE or ~/.pgpass file (host:port:database:user:password, mode 0600), or in a file named by the URL\'s passwordFile=<path>',
  });
}

/** `--state` as given (a directory or a PostgreSQL URL), O365_STATE_DIR, or the default directory; not resolved. */
export function stateLocationOf(flags: { readonly state?: string | undefined }, env: NodeJS.ProcessEnv): string {
  return flags.state?.trim() || env['O365_STATE_DIR']?.trim() || defaultStateDir;
}
