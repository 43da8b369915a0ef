/**
 * One validated configuration from, highest precedence first: flags; O365_* environment variables; the
 * outputs file (`--outputs` or O365_OUTPUTS_FILE, written by `pulumi stack output --json --show-secrets`);
 * the live stack (`--stack`, through the Pulumi CLI). The outputs and the variables that stand for them are checked by
 * the stack-outputs contract (stack-outputs.ts). Invalid input is one ConfigError naming the field.
 */
import { registerSecret } from '../observe/secret-values.ts';
import { execFile } from 'node:child_process';
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { collectedTypes, contentTypes as auditContentTypes, isCollectedType, type CollectedType } from '../../contract/content-types.ts';
import type { ClientCredential } from './credential.ts';
import { ConfigError } from '../core/errors.ts';
import { cloudNames, clouds, type CloudName } from '../../contract/clouds.ts';
import { readOutputsBytes } from './outputs-file.ts';
import { outputsError } from './outputs-error.ts';
import { stateLocationOf } from './state-location.ts';
import { credentialKinds, stackOutputsSchema, type CredentialKind, type StackOutputs } from '../../contract/stack-outputs.ts';

export interface ConnectorConfig {
  readonly connectorName: string;
  readonly tenantId: string;
  readonly tenantDomain: string | undefined;
  /** Undefined only for a system-assigned managed identity (the host knows which identity it is). */
  readonly clientId: string | undefined;
  readonly credential: ClientCredential;
  /** When the client secret expires (clientSecretExpiry output), to warn ahead of time; never set for a credential without a secret. */
  readonly secretExpiresAt: Date | undefined;
  readonly publisherId: string;
  readonly cloud: CloudName;
  readonly authorityHost: string;
  readonly apiRoot: string;
  /** Microsoft Graph's root (service health); also its token audience (`${graphRoot}/.default`). */
  readonly graphRoot: string;
  /** The outputs' word on the audit search's permission (AuditLogsQuery.Read.All): granted, not, or unknown (undefined). */
  readonly auditSearch: boolean | undefined;
  /** Extra CA bundle trusted in addition to the default roots (NODE_EXTRA_CA_CERTS works as usual too). */
  readonly caFile: string | undefined;
  /** The units to collect: audit content types, and ServiceHealth (Microsoft Graph). */
  readonly contentTypes: CollectedType[];
  readonly stateDir: string;
  /** The Sentinel destination the stack made (sentinelEndpoint, sentinelRule, sentinelStream outputs), for `--sink sentinel`. */
  readonly sentinel: SentinelDestination | undefined;
}

/** Where the Sentinel sink posts: a Logs Ingestion endpoint, a data collection rule's immutable id, its stream. */
export interface SentinelDestination {
  readonly endpoint: string;
  readonly rule: string;
  readonly stream: string;
}

/** Flags that override every other source. */
export interface ConfigFlags {
  readonly outputs?: string | undefined;
  readonly stack?: string | undefined;
  readonly contentTypes?: string | undefined;
  readonly state?: string | undefined;
  /** What the outputs file's errors name first: `--outputs`, or `--tenants` for a fleet's tenant file. */
  readonly outputsField?: string | undefined;
  /** `--credential` (else O365_CREDENTIAL): which credential to use, over what the outputs say. */
  readonly credential?: string | undefined;
  /** `--federated-token-file`: over the outputs' federatedTokenFile and AZURE_FEDERATED_TOKEN_FILE. */
  readonly federatedTokenFile?: string | undefined;
}

type Raw = Record<string, unknown>;

/**
 * The text of an outputs file as Windows tools write it too: UTF-8 with or without a byte-order mark, or UTF-16
 * (what Windows PowerShell 5.1's `>` writes: little-endian with a mark), big-endian as well.
 */
function decodeOutputsText(bytes: Buffer): string {
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) return bytes.subarray(3).toString('utf8');
  if (bytes[0] === 0xff && bytes[1] === 0xfe) return bytes.subarray(2).toString('utf16le');
  if (bytes[0] === 0xfe && bytes[1] === 0xff) return Buffer.from(bytes.subarray(2)).swap16().toString('utf16le');
  // No mark: JSON starts with an ASCII character, so a zero byte beside it gives UTF-16 away.
  if (bytes.length >= 2 && bytes.length % 2 === 0 && bytes[0] !== 0 && bytes[1] === 0) return bytes.toString('utf16le');
  if (bytes.length >= 2 && bytes.length % 2 === 0 && bytes[0] === 0 && bytes[1] !== 0) return Buffer.from(bytes).swap16().toString('utf16le');
  return bytes.toString('utf8');
}

/** The JSON object `text` holds; undefined when it holds none. */
function jsonObjectOf(text: string): Raw | undefined {
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? parsed as Raw : undefined;
  } catch {
    return undefined;
  }
}

async function readOutputsFile(path: string, field: string): Promise<Raw> {
  const text = decodeOutputsText(await readOutputsBytes(path, field));
  const parsed = jsonObjectOf(text);
  if (!parsed) throw new ConfigError(field, `${path} ${text.trim() === '' ? 'is empty, not' : 'is not'} the JSON object that \`pulumi stack output --json --show-secrets\` prints`, 'regenerate it with that command');
  return parsed;
}

/** An outputs file holding the client secret that other users may read. */
function outputsFileWarnings(flags: ConfigFlags, env: NodeJS.ProcessEnv): string[] {
  const path = text(flags.outputs) ?? text(env['O365_OUTPUTS_FILE']);
  if (!path) return [];
  try {
    const mode = statSync(resolve(path)).mode & 0o777;
    if ((mode & 0o044) === 0) return [];
    return [`${resolve(path)} holds the client secret and is readable by ${(mode & 0o004) !== 0 ? 'every user' : 'its group'} (mode ${mode.toString(8).padStart(4, '0')}): chmod 600 it`];
  } catch {
    return [];
  }
}

/** `pulumi stack output --json --show-secrets --stack <name>`; its output holds the secret, so it is never logged or echoed. */
function readStackOutputs(stack: string, env: NodeJS.ProcessEnv): Promise<Raw> {
  return new Promise((resolvePromise, reject) => {
    execFile('pulumi', ['stack', 'output', '--json', '--show-secrets', '--stack', stack],
      { maxBuffer: 4 * 1024 * 1024, timeout: 120_000, env: { ...env, PULUMI_SKIP_UPDATE_CHECK: 'true' } },
      (error, stdout) => {
        if (error) {
          const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
          reject(missing
            ? new ConfigError('--stack', 'the Pulumi CLI is not installed (or not on PATH)', 'install Pulumi, or use --outputs <file> written by `pulumi stack output --json --show-secrets` on a machine that has it')
            : new ConfigError('--stack', `\`pulumi stack output --stack ${stack}\` failed (exit ${String(error.code ?? error.signal)})`, 'check the stack name (`pulumi stack ls`) and `pulumi login`'));
          return;
        }
        const parsed = jsonObjectOf(stdout);
        if (parsed) resolvePromise(parsed);
        else reject(new ConfigError('--stack', `the outputs of stack ${stack} are not a JSON object`, 'check `pulumi stack output --json` for that stack'));
      });
  });
}

function text(value: string | undefined): string | undefined {
  return value?.trim() || undefined;
}

function parseContentTypes(field: string, value: unknown): CollectedType[] | undefined {
  if (value === undefined || value === null) return undefined;
  const list = Array.isArray(value) ? value.map(String) : String(value).split(',');
  const names = list.map((name) => name.trim()).filter((name) => name !== '');
  if (names.length === 0) return undefined;
  for (const name of names) {
    if (!isCollectedType(name)) throw new ConfigError(field, `unknown content type "${name}"`, `use any of ${collectedTypes.join(', ')} (comma-separated)`);
  }
  return [...new Set(names)] as CollectedType[];
}

/** The outputs file over the stack: both are "what the Pulumi program produced"; the file is the explicit one. */
async function readBase(flags: ConfigFlags, env: NodeJS.ProcessEnv): Promise<Raw> {
  const outputs = text(flags.outputs) ?? text(env['O365_OUTPUTS_FILE']);
  const stack = text(flags.stack) ? await readStackOutputs(flags.stack!.trim(), env) : {};
  const file = outputs ? await readOutputsFile(resolve(outputs), flags.outputsField ?? '--outputs') : {};
  return { ...stack, ...file };
}

/** O365_* variables that stand for the output of the same meaning, and win over it. */
const envOutputs = {
  tenantId: 'O365_TENANT_ID', clientId: 'O365_CLIENT_ID', tenantDomain: 'O365_TENANT_DOMAIN', publisherId: 'O365_PUBLISHER_ID',
  cloud: 'O365_CLOUD', authorityHost: 'O365_AUTHORITY_HOST', apiRoot: 'O365_API_ROOT', graphRoot: 'O365_GRAPH_ROOT',
} as const satisfies Partial<Record<keyof StackOutputs, string>>;

/**
 * The outputs with the environment over them, validated by the stack-outputs contract. Every field may be absent
 * here (the environment can stand in for the outputs); loadConfig decides what is required. Blank values count as
 * absent, as an unset variable does.
 */
async function readOutputs(flags: ConfigFlags, env: NodeJS.ProcessEnv): Promise<Partial<StackOutputs>> {
  const merged: Raw = await readBase(flags, env);
  for (const [key, envName] of Object.entries(envOutputs)) {
    if (text(env[envName]) !== undefined) merged[key] = env[envName];
  }
  const present = Object.fromEntries(Object.entries(merged).filter(([, value]) => value !== null && value !== undefined && !(typeof value === 'string' && value.trim() === '')));
  const parsed = stackOutputsSchema.partial().safeParse(present);
  if (!parsed.success) throw outputsError(parsed.error);
  return parsed.data;
}

/**
 * The credential, by kind: `--credential` or O365_CREDENTIAL when given; else a certificate or secret in the environment
 * (a certificate wins: it was set on purpose); else a certificate path in the outputs file (an operator's addition);
 * else the outputs' `credential`; else a secret in the outputs; else AZURE_FEDERATED_TOKEN_FILE means federated, as the Azure SDKs' workload identity credential reads it.
 * Undefined when nothing names one.
 */
function credentialOf(flags: ConfigFlags, outputs: Partial<StackOutputs>, env: NodeJS.ProcessEnv): ClientCredential | undefined {
  const envCertificate = text(env['O365_CLIENT_CERTIFICATE_PATH']);
  const envSecret = text(env['O365_CLIENT_SECRET']);
  const tokenFile = text(flags.federatedTokenFile) ?? outputs.federatedTokenFile ?? text(env['AZURE_FEDERATED_TOKEN_FILE']);
  const kind = explicitKind(flags, env)
    ?? (envCertificate ? 'certificate' : envSecret ? 'secret' : undefined)
    // clientCertificatePath is never exported: an operator who wrote it into the file chose the certificate.
    ?? (outputs.clientCertificatePath ? 'certificate' : undefined)
    ?? outputs.credential
    ?? (outputs.clientSecret ? 'secret' : undefined)
    ?? (tokenFile ? 'federated' : undefined);
  switch (kind) {
    case undefined: return undefined;
    case 'managedIdentity': return { kind };
    case 'federated': {
      if (!tokenFile) throw new ConfigError('federatedTokenFile', 'missing: the credential is federated, but no token file is named', 'set AZURE_FEDERATED_TOKEN_FILE (Azure Workload Identity sets it in the pod), --federated-token-file, or federatedTokenFile in the outputs file');
      return { kind, tokenFile: resolve(tokenFile) };
    }
    case 'certificate': {
      const path = envCertificate ?? outputs.clientCertificatePath;
      if (!path) throw new ConfigError('clientCertificatePath', 'missing: the credential is certificate, but no certificate file is named', 'set O365_CLIENT_CERTIFICATE_PATH to a PEM file holding the private key and the certificate');
      return { kind, path: resolve(path) };
    }
    case 'secret': {
      const secret = envSecret ?? outputs.clientSecret;
      if (!secret) return undefined;
      registerSecret(secret);
      return { kind, secret };
    }
  }
}

function explicitKind(flags: ConfigFlags, env: NodeJS.ProcessEnv): CredentialKind | undefined {
  const [field, given] = text(flags.credential) ? ['--credential', text(flags.credential)!] : ['O365_CREDENTIAL', text(env['O365_CREDENTIAL'])];
  if (given === undefined) return undefined;
  if (!(credentialKinds as readonly string[]).includes(given)) throw new ConfigError(field, `unknown credential "${given}"`, `use one of ${credentialKinds.join(', ')}`);
  return given as CredentialKind;
}

/** AZURE_CLIENT_ID and AZURE_TENANT_ID (what Azure Workload Identity injects): used only where nothing else names the id. */
const azureFallbacks = { tenantId: 'AZURE_TENANT_ID', clientId: 'AZURE_CLIENT_ID' } as const;

function azureFallback(field: keyof typeof azureFallbacks, env: NodeJS.ProcessEnv): string | undefined {
  const value = text(env[azureFallbacks[field]]);
  if (value === undefined) return undefined;
  const parsed = stackOutputsSchema.shape[field].safeParse(value);
  if (!parsed.success) throw new ConfigError(azureFallbacks[field], `must be a GUID (got "${value}")`, `set ${azureFallbacks[field]} to the ${field === 'tenantId' ? 'directory (tenant)' : 'application (client)'} id, or ${envOutputs[field]} over it`);
  return parsed.data;
}

function required<T>(field: 'tenantId' | 'clientId', value: T | undefined): T {
  if (value === undefined) {
    throw new ConfigError(field, 'missing', `pass --outputs <file> from \`pulumi stack output --json --show-secrets\`, --stack <name>, or set ${envOutputs[field]} (or ${azureFallbacks[field]})`);
  }
  return value;
}

/**
 * O365_CLOUD names one cloud while the endpoints, from the outputs, are another's: the connector would print one
 * and call the other. Endpoints given with the cloud in the same place (an outputs file for a stand-in, or both
 * variables) are a deliberate choice and stand.
 */
function refuseCloudContradiction(cloud: CloudName, outputs: Partial<StackOutputs>, env: NodeJS.ProcessEnv): void {
  if (text(env['O365_CLOUD']) === undefined) return;
  for (const [field, variable] of [['apiRoot', 'O365_API_ROOT'], ['authorityHost', 'O365_AUTHORITY_HOST'], ['graphRoot', 'O365_GRAPH_ROOT']] as const) {
    const given = outputs[field];
    if (text(env[variable]) !== undefined || given === undefined || given === clouds[cloud][field]) continue;
    const owner = cloudNames.find((name) => clouds[name][field] === given);
    throw new ConfigError('O365_CLOUD', `${cloud} contradicts the outputs' ${field} ${given}${owner ? ` (the ${owner} cloud's)` : ''}`,
      `unset O365_CLOUD to use the outputs as they are, set ${variable} too, or write the outputs again from a stack configured with cloud ${cloud}`);
  }
}

export interface LoadedConfig {
  readonly config: ConnectorConfig;
  /** Things worth a warning in the log (an outputs file others may read). */
  readonly warnings: readonly string[];
  /** Reads the credential again from the same sources (a stack update may have rotated it); undefined when unreadable. */
  reloadCredential(): Promise<ClientCredential | undefined>;
}

export async function loadConfig(flags: ConfigFlags, env: NodeJS.ProcessEnv = process.env): Promise<LoadedConfig> {
  const outputs = await readOutputs(flags, env);
  const tenantId = required('tenantId', outputs.tenantId ?? azureFallback('tenantId', env)).toLowerCase();
  const credential = credentialOf(flags, outputs, env);
  if (!credential) {
    throw new ConfigError('clientSecret', 'missing: no client secret, no certificate and no other credential', 'write the outputs file with `pulumi stack output --json --show-secrets` (without --show-secrets it holds "[secret]"), or set O365_CLIENT_SECRET or O365_CLIENT_CERTIFICATE_PATH; without a secret: --credential federated or managedIdentity (see "Without a secret" in the README)');
  }
  if (credential.kind === 'secret' && credential.secret === '[secret]') {
    throw new ConfigError('clientSecret', 'is the placeholder "[secret]"', 'write the outputs file with `pulumi stack output --json --show-secrets`');
  }
  const givenClientId = outputs.clientId ?? azureFallback('clientId', env);
  // A managed identity without a client id is the host's system-assigned one; every other credential is an app's.
  const clientId = (credential.kind === 'managedIdentity' ? givenClientId : required('clientId', givenClientId))?.toLowerCase();

  const cloud = outputs.cloud ?? 'commercial';
  refuseCloudContradiction(cloud, outputs, env);
  const contentTypes = parseContentTypes('--content-types', flags.contentTypes)
    ?? parseContentTypes('O365_CONTENT_TYPES', env['O365_CONTENT_TYPES'])
    ?? (outputs.contentTypes?.length ? outputs.contentTypes : undefined)
    // ServiceHealth only when asked for, or when the outputs say the Graph permissions were granted.
    ?? [...auditContentTypes];
  // The expiry in the outputs describes the outputs' secret, not one from the environment.
  const secretExpiresAt = outputs.clientSecretExpiry && credential.kind === 'secret' && !text(env['O365_CLIENT_SECRET']) ? new Date(outputs.clientSecretExpiry) : undefined;

  const config: ConnectorConfig = {
    connectorName: outputs.connectorName ?? 'o365-connector',
    tenantId, tenantDomain: outputs.tenantDomain, clientId, credential, secretExpiresAt,
    publisherId: (outputs.publisherId ?? tenantId).toLowerCase(), cloud,
    authorityHost: outputs.authorityHost ?? clouds[cloud].authorityHost,
    apiRoot: outputs.apiRoot ?? clouds[cloud].apiRoot,
    graphRoot: outputs.graphRoot ?? clouds[cloud].graphRoot,
    auditSearch: outputs.auditSearch,
    caFile: outputs.caFile ? resolve(outputs.caFile) : undefined, contentTypes,
    stateDir: resolve(stateLocationOf(flags, env)),
    sentinel: outputs.sentinelEndpoint && outputs.sentinelRule && outputs.sentinelStream
      ? { endpoint: outputs.sentinelEndpoint, rule: outputs.sentinelRule, stream: outputs.sentinelStream } : undefined,
  };
  return {
    config,
    // Only a secret is worth hiding: the outputs of a credential without one hold nothing secret.
    warnings: credential.kind === 'secret' ? outputsFileWarnings(flags, env) : [],
    reloadCredential: async () => {
      try {
        return credentialOf(flags, await readOutputs(flags, env), env);
      } catch {
        return undefined;
      }
    },
  };
}

const units: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

const monthNames = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

/** A day or time that does not exist (2026-02-30, 24:00): the date parser would roll it over into another. */
function refuseImpossibleDate(value: string, text: string): void {
  const parts = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2}))?)?/.exec(text);
  if (!parts) return;
  const [year, month, day, hour = 0, minute = 0, second = 0] = parts.slice(1).map((part) => (part === undefined ? undefined : Number(part))) as number[];
  const days = month! >= 1 && month! <= 12 ? new Date(Date.UTC(year!, month!, 0)).getUTCDate() : 0;
  if (days === 0) throw new ConfigError('--since', `${value} has no month ${month}`, 'give a date as YYYY-MM-DD, e.g. --since 2026-11-20');
  if (day! < 1 || day! > days) throw new ConfigError('--since', `${value} is not a date: ${monthNames[month! - 1]} ${year} has ${days} days`, 'give a day that exists, e.g. --since 2026-11-20');
  if (hour! > 23 || minute! > 59 || second! > 59) throw new ConfigError('--since', `${value} is not a time of day`, 'give hours 00-23, minutes and seconds 00-59, e.g. --since 2026-11-20T06:30:00Z');
}

/** `--since`: an ISO time (UTC when no zone is given), or a duration back from now such as 90m, 36h, 7d. */
export function parseSince(value: string, now: Date): Date {
  const trimmed = value.trim();
  const duration = /^(\d+(?:\.\d+)?)\s*([smhdw])$/i.exec(trimmed);
  let date: Date;
  if (duration) {
    date = new Date(now.getTime() - Number(duration[1]) * units[duration[2]!.toLowerCase()]!);
  } else {
    const iso = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$/.test(trimmed) ? `${trimmed.length === 10 ? `${trimmed}T00:00:00` : trimmed}Z` : trimmed;
    date = /^\d{4}-\d{2}-\d{2}/.test(trimmed) ? new Date(iso) : new Date(Number.NaN);
    refuseImpossibleDate(value, trimmed);
  }
  if (Number.isNaN(date.getTime())) throw new ConfigError('--since', `"${value}" is neither an ISO time nor a duration`, 'e.g. --since 36h, --since 7d or --since 2026-11-20T00:00:00Z');
  if (date.getTime() > now.getTime()) throw new ConfigError('--since', `${value} is in the future`, 'give a past time or a duration such as 36h');
  return date;
}
