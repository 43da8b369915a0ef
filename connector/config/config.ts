import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { contentTypes as allContentTypes, isContentType, type ContentType } from '../api/content-types.ts';
import type { ClientCredential } from '../auth/token-provider.ts';
import { ConfigError } from '../errors.ts';
import { clouds, cloudNames, isCloudName, type CloudName } from './clouds.ts';

export interface ConnectorConfig {
  readonly connectorName: string;
  readonly tenantId: string;
  readonly tenantDomain: string | undefined;
  readonly clientId: string;
  readonly credential: ClientCredential;
  readonly publisherId: string;
  readonly cloud: CloudName;
  readonly authorityHost: string;
  readonly apiRoot: string;
  readonly caFile: string | undefined;
  readonly contentTypes: ContentType[];
  readonly stateDir: string;
}

/** Flags that override every other source. */
export interface ConfigFlags {
  readonly outputs?: string | undefined;
  readonly stack?: string | undefined;
  readonly contentTypes?: string | undefined;
  readonly state?: string | undefined;
}

type Raw = Record<string, unknown>;

const guid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

async function readOutputsFile(path: string): Promise<Raw> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new ConfigError('--outputs', `cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`, 'write it with `pulumi stack output --json --show-secrets > outputs.json`');
  }
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
    return parsed as Raw;
  } catch {
    throw new ConfigError('--outputs', `${path} is not the JSON object that \`pulumi stack output --json --show-secrets\` prints`, 'regenerate it with that command');
  }
}

function readStack(stack: string): Promise<Raw> {
  return new Promise((resolvePromise, reject) => {
    execFile('pulumi', ['stack', 'output', '--json', '--show-secrets', '--stack', stack], { maxBuffer: 4 * 1024 * 1024 }, (error, stdout) => {
      if (error) {
        // Never echo the command's output: it holds the client secret.
        const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
        reject(new ConfigError('--stack', missing ? 'the Pulumi CLI is not installed here' : `\`pulumi stack output --stack ${stack}\` failed (exit ${String(error.code)})`,
          missing ? 'use --outputs <file> written by `pulumi stack output --json --show-secrets` on a machine with Pulumi' : 'check the stack name and `pulumi login`'));
        return;
      }
      try {
        resolvePromise(JSON.parse(stdout) as Raw);
      } catch {
        reject(new ConfigError('--stack', 'the stack outputs are not JSON', 'check `pulumi stack output --json`'));
      }
    });
  });
}

function text(value: unknown): string | undefined {
  if (typeof value === 'string' && value.trim() !== '') return value.trim();
  return undefined;
}

function httpsUrl(field: string, value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(field, `"${value}" is not a URL`, 'give an https:// URL');
  }
  if (url.protocol !== 'https:') throw new ConfigError(field, `must be https (got ${url.protocol}//)`, 'TLS verification is never switched off; use https:// and NODE_EXTRA_CA_CERTS for private CAs');
  return `${url.origin}${url.pathname.replace(/\/$/, '')}`;
}

export function parseContentTypes(field: string, value: unknown): ContentType[] | undefined {
  if (value === undefined) return undefined;
  const list = Array.isArray(value) ? value.map(String) : String(value).split(',');
  const names = list.map((name) => name.trim()).filter((name) => name !== '');
  if (names.length === 0) return undefined;
  for (const name of names) {
    if (!isContentType(name)) throw new ConfigError(field, `unknown content type "${name}"`, `use any of ${allContentTypes.join(', ')}`);
  }
  return [...new Set(names)] as ContentType[];
}

/** Where the base configuration comes from, so a rejected secret can be re-read after a rotation. */
async function readBase(flags: ConfigFlags, env: NodeJS.ProcessEnv): Promise<Raw> {
  const outputs = flags.outputs ?? text(env['O365_OUTPUTS_FILE']);
  if (flags.stack) return readStack(flags.stack);
  if (outputs) return readOutputsFile(resolve(outputs));
  return {};
}

function credentialOf(base: Raw, env: NodeJS.ProcessEnv): ClientCredential | undefined {
  const certificatePath = text(env['O365_CLIENT_CERTIFICATE_PATH']) ?? text(base['clientCertificatePath']);
  const secret = text(env['O365_CLIENT_SECRET']) ?? text(base['clientSecret']);
  if (secret) return { kind: 'secret', secret };
  if (certificatePath) return { kind: 'certificate', path: resolve(certificatePath) };
  return undefined;
}

export interface LoadedConfig {
  readonly config: ConnectorConfig;
  /** Reads the credential again from the same sources (a stack update may have rotated it). */
  reloadCredential(): Promise<ClientCredential | undefined>;
}

export async function loadConfig(flags: ConfigFlags, env: NodeJS.ProcessEnv = process.env): Promise<LoadedConfig> {
  const base = await readBase(flags, env);
  const pick = (envName: string, key: string) => text(env[envName]) ?? text(base[key]);

  const tenantId = pick('O365_TENANT_ID', 'tenantId');
  if (!tenantId) throw new ConfigError('tenantId', 'missing', 'pass --outputs <file> from `pulumi stack output --json --show-secrets`, or set O365_TENANT_ID');
  if (!guid.test(tenantId)) throw new ConfigError('tenantId', `"${tenantId}" must be the directory (tenant) GUID`, 'use `pulumi stack output tenantId`, not the domain name');
  const clientId = pick('O365_CLIENT_ID', 'clientId');
  if (!clientId) throw new ConfigError('clientId', 'missing', 'set O365_CLIENT_ID or clientId in the outputs file');
  if (!guid.test(clientId)) throw new ConfigError('clientId', `"${clientId}" must be the application (client) GUID`, 'use `pulumi stack output clientId`');
  const credential = credentialOf(base, env);
  if (!credential) throw new ConfigError('clientSecret', 'missing: no client secret and no certificate', 'set O365_CLIENT_SECRET (or O365_CLIENT_CERTIFICATE_PATH), or write the outputs file with --show-secrets');

  const cloudName = pick('O365_CLOUD', 'cloud') ?? 'commercial';
  if (!isCloudName(cloudName)) throw new ConfigError('cloud', `unknown cloud "${cloudName}"`, `use one of ${cloudNames.join(', ')}`);
  const authorityHost = httpsUrl('authorityHost', pick('O365_AUTHORITY_HOST', 'authorityHost') ?? clouds[cloudName].authorityHost);
  const apiRoot = httpsUrl('apiRoot', pick('O365_API_ROOT', 'apiRoot') ?? clouds[cloudName].apiRoot);
  const publisherId = pick('O365_PUBLISHER_ID', 'publisherId') ?? tenantId;
  if (!guid.test(publisherId)) throw new ConfigError('publisherId', `"${publisherId}" must be a GUID`, 'leave it unset to use the tenant id');

  const contentTypes = parseContentTypes('--content-types', flags.contentTypes)
    ?? parseContentTypes('O365_CONTENT_TYPES', env['O365_CONTENT_TYPES'])
    ?? parseContentTypes('contentTypes', base['contentTypes'])
    ?? [...allContentTypes];
  const caFile = text(base['caFile']);

  const config: ConnectorConfig = {
    connectorName: text(base['connectorName']) ?? 'o365-connector',
    tenantId, tenantDomain: pick('O365_TENANT_DOMAIN', 'tenantDomain'), clientId, credential, publisherId, cloud: cloudName,
    authorityHost, apiRoot, caFile: caFile ? resolve(caFile) : undefined, contentTypes,
    stateDir: resolve(flags.state ?? text(env['O365_STATE_DIR']) ?? '.o365-state'),
  };
  return {
    config,
    reloadCredential: async () => {
      try {
        return credentialOf(await readBase(flags, env), env);
      } catch {
        return undefined;
      }
    },
  };
}

/** `--since`: an ISO time, or a duration back from now such as 90m, 36h, 7d. */
export function parseSince(value: string, now: Date): Date {
  const duration = /^(\d+)\s*(m|h|d)$/i.exec(value.trim());
  if (duration) {
    const unit = { m: 60_000, h: 3_600_000, d: 86_400_000 }[duration[2]!.toLowerCase() as 'm' | 'h' | 'd'];
    return new Date(now.getTime() - Number(duration[1]) * unit);
  }
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) throw new ConfigError('--since', `"${value}" is neither an ISO time nor a duration`, 'e.g. --since 36h, --since 7d or --since 2026-11-20T00:00:00Z');
  if (date.getTime() > now.getTime()) throw new ConfigError('--since', `${value} is in the future`, 'give a past time');
  return date;
}
