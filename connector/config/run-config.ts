/**
 * What a command runs with: commander's options and the environment, read once into one validated configuration
 * with every default applied here. Nothing below the CLI reads a flag or applies a default again.
 */
import { hostname } from 'node:os';
import { z } from 'zod';
import { ConfigError, ConnectorError } from '../core/errors.ts';
import { proxySettings, type ProxySettings } from '../http/proxy.ts';
import { registerSecret } from '../observe/secret-values.ts';
import { parseSince } from './config.ts';
import { runSettingsFrom, type RunSettings } from './settings.ts';
import { isPostgresUrl, refusePasswordInStateUrl, stateLocationOf } from './state-location.ts';

/** Where the tenants come from: one directory of outputs files (a fleet), or the one tenant of --outputs, --stack or the environment. */
export type TenantSourceSpec =
  | { readonly kind: 'directory'; readonly dir: string; readonly contentTypes: string | undefined }
  | { readonly kind: 'fixed'; readonly outputs: string | undefined; readonly stack: string | undefined; readonly contentTypes: string | undefined; readonly state: string | undefined; readonly credential: string | undefined; readonly federatedTokenFile: string | undefined };

export interface RunConfiguration {
  readonly tenants: TenantSourceSpec;
  /** `--state` as given, O365_STATE_DIR, or the default directory (not resolved). */
  readonly state: string;
  /** --state or O365_STATE_DIR was given (status reports a missing directory then). */
  readonly stateGiven: boolean;
  /** Many tenants, or state in a database the fleet shares: every unit's errors are reported, none ends the run. */
  readonly fleet: boolean;
  readonly workerName: string;
  /** Sink specs: --sink, else O365_SINKS, else stdout (`run`; `test` checks only those given). */
  readonly sinks: readonly string[];
  readonly since: Date;
  /** --since as written (for messages). */
  readonly sinceText: string;
  readonly once: boolean;
  readonly emitHealth: boolean;
  readonly listen: string | undefined;
  /** `--listen-token-env VAR`: the token (VAR's value) every path of the --listen server but /livez and /readyz asks for. */
  readonly listenToken: string | undefined;
  /** One live line per content type under the logs: stderr is a terminal and one tenant is collected. */
  readonly progress: boolean;
  readonly proxy: ProxySettings | undefined;
  readonly logLevel: string | undefined;
  readonly json: boolean;
  readonly offline: boolean;
  readonly settings: RunSettings;
  /** `status` only: the proxy cannot be used (its live subscription list is then skipped with a warning). */
  readonly proxyFailure?: ConnectorError;
}

export type CommandName = 'run' | 'test' | 'status' | 'subscriptions';

/** Commander's options of every command (a command has the ones it declares). */
const optionsSchema = z.object({
  outputs: z.string().optional(),
  stack: z.string().optional(),
  proxy: z.string().optional(),
  logLevel: z.string().optional(),
  tenants: z.string().optional(),
  state: z.string().optional(),
  contentTypes: z.string().optional(),
  workerName: z.string().optional(),
  listen: z.string().optional(),
  listenTokenEnv: z.string().optional(),
  sink: z.array(z.string()).default([]),
  since: z.string().default('7d'),
  once: z.boolean().default(false),
  emitHealth: z.boolean().default(false),
  json: z.boolean().default(false),
  offline: z.boolean().default(false),
  credential: z.string().optional(),
  federatedTokenFile: z.string().optional(),
});

/**
 * `--listen-token-env VAR`: the token is VAR's value, never a flag's (a flag shows in `ps`). Refused when VAR is empty
 * or unset, or when there is no --listen to protect. The token is a secret: it is redacted from every line.
 */
function listenTokenOf(flags: { readonly listen?: string | undefined; readonly listenTokenEnv?: string | undefined }, env: NodeJS.ProcessEnv): string | undefined {
  const variable = flags.listenTokenEnv?.trim();
  if (variable === undefined) return undefined;
  if (!flags.listen) throw new ConfigError('--listen-token-env', 'has no --listen server to protect', 'give --listen <host:port> (or O365_LISTEN) as well, or drop --listen-token-env');
  const token = (env[variable] ?? '').trim();
  if (token === '') throw new ConfigError('--listen-token-env', `the variable ${variable || '""'} is unset or empty`, `set ${variable || 'it'} to a long random token (e.g. openssl rand -hex 32), or drop --listen-token-env`);
  registerSecret(token);
  return token;
}

/** Variables that would name one tenant's identity or credential: in a fleet, each tenant's file does. */
export const perTenantVariables = ['O365_OUTPUTS_FILE', 'O365_TENANT_ID', 'O365_CLIENT_ID', 'O365_TENANT_DOMAIN', 'O365_PUBLISHER_ID', 'O365_CLIENT_SECRET', 'O365_CLIENT_CERTIFICATE_PATH', 'O365_CREDENTIAL'] as const;
/** What Azure Workload Identity injects for its one app: a fleet's tenants name their ids in their files (AZURE_FEDERATED_TOKEN_FILE stays: many tenants' files may share the one token). */
export const hostIdentityVariables = ['AZURE_CLIENT_ID', 'AZURE_TENANT_ID'] as const;

/**
 * `--tenants` stands alone: refused beside `--outputs`/`--stack` or a variable that names one tenant's identity or
 * credential, one line each (a fleet's tenants are its files).
 */
function refuseSingleTenantSources(flags: { readonly outputs?: string | undefined; readonly stack?: string | undefined; readonly credential?: string | undefined; readonly federatedTokenFile?: string | undefined }, env: NodeJS.ProcessEnv): void {
  if (flags.outputs || flags.stack) {
    throw new ConfigError('--tenants', `cannot be combined with ${flags.outputs ? '--outputs (or O365_OUTPUTS_FILE)' : '--stack'}: each tenant's outputs file in the directory is its configuration`, 'drop one of them');
  }
  if (flags.credential || flags.federatedTokenFile) {
    throw new ConfigError('--tenants', `cannot be combined with ${flags.credential ? '--credential' : '--federated-token-file'}: each tenant's file names its credential (its credential and federatedTokenFile keys)`, 'drop the flag and write those keys into the tenants\' files');
  }
  const variable = perTenantVariables.find((name) => (env[name] ?? '').trim() !== '');
  if (variable) throw new ConfigError(variable, 'names one tenant, but --tenants collects many: each tenant\'s identity and credential come from its file', `unset ${variable}`);
}

/**
 * The configuration of `command` from commander's options (`optsWithGlobals()`), the environment and whether stderr
 * is a terminal. A mistake is one ConfigError naming the flag. `status` reports without Microsoft when it must: a
 * proxy it cannot use is then its warning, not its failure (`proxyFailure`).
 */
export function runConfigurationOf(command: CommandName, options: object, input: { readonly env: NodeJS.ProcessEnv; readonly stderrIsTTY?: boolean | undefined; readonly now?: Date }): RunConfiguration {
  const { env } = input;
  const flags = optionsSchema.parse(options);
  const state = stateLocationOf(flags, env);
  if (isPostgresUrl(state)) refusePasswordInStateUrl(state);
  if (flags.tenants !== undefined) refuseSingleTenantSources(command === 'status' ? {} : flags, env);
  const tenants: TenantSourceSpec = flags.tenants !== undefined
    ? { kind: 'directory', dir: flags.tenants, contentTypes: flags.contentTypes }
    : { kind: 'fixed', outputs: flags.outputs, stack: flags.stack, contentTypes: flags.contentTypes, state: flags.state, credential: flags.credential, federatedTokenFile: flags.federatedTokenFile };
  const fleet = tenants.kind === 'directory' || isPostgresUrl(state);
  const since = parseSince(flags.since, input.now ?? new Date());
  let proxy: ProxySettings | undefined;
  let proxyFailure: ConnectorError | undefined;
  try {
    proxy = proxySettings(env, flags.proxy);
  } catch (error) {
    if (command !== 'status' || !(error instanceof ConnectorError)) throw error;
    proxyFailure = error;
  }
  // The --sink flags, else O365_SINKS: specs apart by whitespace or newlines, so a systemd `Environment=` or an env file can hold several.
  const sinks = flags.sink.length ? flags.sink : (env['O365_SINKS'] ?? '').split(/\s+/).filter(Boolean);
  return {
    tenants, state, fleet,
    stateGiven: Boolean(flags.state ?? env['O365_STATE_DIR']),
    workerName: flags.workerName?.trim() || hostname(),
    sinks: command === 'run' && sinks.length === 0 ? ['stdout'] : sinks,
    since, sinceText: flags.since,
    once: flags.once, emitHealth: flags.emitHealth, listen: flags.listen, listenToken: listenTokenOf(flags, env),
    progress: input.stderrIsTTY === true && !fleet,
    proxy, logLevel: flags.logLevel, json: flags.json, offline: flags.offline,
    settings: runSettingsFrom(options),
    ...(proxyFailure ? { proxyFailure } : {}),
  };
}
