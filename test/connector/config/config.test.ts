import { describe, expect, it } from 'vitest';
import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadConfig, parseSince } from '../../../connector/config/config.ts';
import { stateLocationOf } from '../../../connector/config/state-location.ts';
import { ConfigError } from '../../../connector/core/errors.ts';

const tenantId = '2f0c3a11-6c55-4d8a-9a1e-0d7d2c1b4e77';
const clientId = '0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e';
const outputs = {
  connectorName: 'soc', tenantId, tenantDomain: 'contoso.onmicrosoft.com', clientId, clientSecret: 'Q~file-secret-value',
  publisherId: tenantId, cloud: 'gcchigh', clientSecretExpiry: '2027-05-24T00:00:00Z', contentTypes: ['Audit.General', 'Audit.Exchange'],
};
const dir = await mkdtemp(join(tmpdir(), 'o365-config-'));
let files = 0;

async function outputsFile(content: unknown): Promise<string> {
  const file = join(dir, `outputs-${(files += 1)}.json`);
  await writeFile(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

const minimalEnv = { O365_TENANT_ID: tenantId, O365_CLIENT_ID: clientId, O365_CLIENT_SECRET: 's' };

async function failure(promise: Promise<unknown>): Promise<ConfigError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('configuration sources', () => {
  it('reads the stack outputs file and derives endpoints from the cloud table', async () => {
    const { config } = await loadConfig({ outputs: await outputsFile(outputs) }, {});
    expect(config).toMatchObject({
      connectorName: 'soc', tenantId, clientId, credential: { kind: 'secret', secret: 'Q~file-secret-value' }, cloud: 'gcchigh',
      authorityHost: 'https://login.microsoftonline.us', apiRoot: 'https://manage.office365.us', contentTypes: ['Audit.General', 'Audit.Exchange'],
      tenantDomain: 'contoso.onmicrosoft.com', secretExpiresAt: new Date('2027-05-24T00:00:00Z'), caFile: undefined,
      stateDir: resolve('.o365-state'),
    });
  });

  it('finds the outputs file through O365_OUTPUTS_FILE', async () => {
    const { config } = await loadConfig({}, { O365_OUTPUTS_FILE: await outputsFile(outputs) });
    expect(config.clientId).toBe(clientId);
  });

  it('gives flags precedence over environment over the outputs file', async () => {
    const file = await outputsFile(outputs);
    const { config } = await loadConfig({ outputs: file, contentTypes: 'DLP.All', state: '/var/lib/o365' }, {
      O365_CLIENT_SECRET: 'env-secret', O365_CONTENT_TYPES: 'Audit.SharePoint', O365_CLOUD: 'commercial', O365_STATE_DIR: '/tmp/ignored',
      O365_TENANT_DOMAIN: 'fabrikam.onmicrosoft.com',
    });
    expect(config.credential).toEqual({ kind: 'secret', secret: 'env-secret' });
    expect(config.contentTypes).toEqual(['DLP.All']);
    expect(config.apiRoot).toBe('https://manage.office.com');
    expect(config.stateDir).toBe('/var/lib/o365');
    expect(config.tenantDomain).toBe('fabrikam.onmicrosoft.com');
    // The expiry in the file describes the file's secret, not the one from the environment.
    expect(config.secretExpiresAt).toBeUndefined();
  });

  it('uses the environment content types and state directory when no flag is given', async () => {
    const { config } = await loadConfig({ outputs: await outputsFile(outputs) }, { O365_CONTENT_TYPES: ' Audit.SharePoint , DLP.All ', O365_STATE_DIR: '/srv/o365' });
    expect(config.contentTypes).toEqual(['Audit.SharePoint', 'DLP.All']);
    expect(config.stateDir).toBe('/srv/o365');
    expect(stateLocationOf({}, { O365_STATE_DIR: '/srv/o365' })).toBe('/srv/o365');
    expect(resolve(stateLocationOf({ state: 'here' }, { O365_STATE_DIR: '/srv/o365' }))).toBe(resolve('here'));
  });

  it('prefers a certificate from the environment over a secret in the outputs file', async () => {
    const { config } = await loadConfig({ outputs: await outputsFile(outputs) }, { O365_CLIENT_CERTIFICATE_PATH: 'conn.pem' });
    expect(config.credential).toEqual({ kind: 'certificate', path: resolve('conn.pem') });
  });

  it('overrides endpoints with O365_AUTHORITY_HOST and O365_API_ROOT, and keeps the outputs caFile', async () => {
    const { config } = await loadConfig({ outputs: await outputsFile({ ...outputs, caFile: 'ca.pem', authorityHost: 'https://login.example.test/' }) }, {
      O365_API_ROOT: 'https://manage.example.test:8443/',
    });
    expect(config.authorityHost).toBe('https://login.example.test');
    expect(config.apiRoot).toBe('https://manage.example.test:8443');
    expect(config.caFile).toBe(resolve('ca.pem'));
  });

  it('defaults the publisher id to the tenant id, the cloud to commercial and the content types to all five', async () => {
    const { config } = await loadConfig({}, minimalEnv);
    expect(config.publisherId).toBe(tenantId);
    expect(config.cloud).toBe('commercial');
    expect(config.authorityHost).toBe('https://login.microsoftonline.com');
    expect(config.contentTypes).toEqual(['Audit.AzureActiveDirectory', 'Audit.Exchange', 'Audit.SharePoint', 'Audit.General', 'DLP.All']);
  });

  it('re-reads the credential from the outputs file after a rotation', async () => {
    const file = await outputsFile(outputs);
    const { reloadCredential } = await loadConfig({ outputs: file }, {});
    await writeFile(file, JSON.stringify({ ...outputs, clientSecret: 'Q~rotated' }));
    await expect(reloadCredential()).resolves.toEqual({ kind: 'secret', secret: 'Q~rotated' });
    await writeFile(file, '{ half written');
    await expect(reloadCredential()).resolves.toBeUndefined();
  });

  it('runs `pulumi stack output --json --show-secrets --stack <name>` for --stack, under the outputs file', async () => {
    const bin = join(dir, 'bin');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(bin, { recursive: true });
    const log = join(dir, 'pulumi-args.txt');
    await writeFile(join(bin, 'pulumi'), `#!/bin/sh\necho "$@" > ${log}\necho '${JSON.stringify({ ...outputs, cloud: 'dod' })}'\n`);
    await chmod(join(bin, 'pulumi'), 0o755);
    const { config } = await loadConfig({ stack: 'prod' }, { PATH: `${bin}:${process.env['PATH'] ?? ''}` });
    expect(config.apiRoot).toBe('https://manage.protection.apps.mil');
    const { readFile } = await import('node:fs/promises');
    expect((await readFile(log, 'utf8')).trim()).toBe('stack output --json --show-secrets --stack prod');
    const both = await loadConfig({ stack: 'prod', outputs: await outputsFile({ ...outputs, cloud: 'gcc' }) }, { PATH: `${bin}:${process.env['PATH'] ?? ''}` });
    expect(both.config.cloud).toBe('gcc');
  });
});

describe('credentials without a secret', () => {
  const { clientSecret: _secret, clientSecretExpiry: _expiry, ...noSecret } = outputs;

  it('takes AZURE_FEDERATED_TOKEN_FILE as the federated credential when no secret or certificate is configured, and reads ids from AZURE_* last', async () => {
    const { config, warnings } = await loadConfig({}, { AZURE_FEDERATED_TOKEN_FILE: 'token', AZURE_CLIENT_ID: clientId, AZURE_TENANT_ID: tenantId });
    expect(config).toMatchObject({ tenantId, clientId, credential: { kind: 'federated', tokenFile: resolve('token') }, secretExpiresAt: undefined });
    expect(warnings).toEqual([]);
    // The outputs and O365_* name the ids over AZURE_*, which Azure Workload Identity sets for its own app.
    const other = '7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d';
    const { config: fromFile } = await loadConfig({ outputs: await outputsFile(noSecret) }, { AZURE_FEDERATED_TOKEN_FILE: 'token', AZURE_CLIENT_ID: other, AZURE_TENANT_ID: other });
    expect(fromFile).toMatchObject({ tenantId, clientId, credential: { kind: 'federated' } });
  });

  it('follows the outputs\' credential and federatedTokenFile, and --credential over everything', async () => {
    const file = await outputsFile({ ...noSecret, credential: 'federated', federatedTokenFile: '/var/run/secrets/azure/tokens/azure-identity-token' });
    const { config } = await loadConfig({ outputs: file }, { AZURE_FEDERATED_TOKEN_FILE: '/elsewhere' });
    expect(config.credential).toEqual({ kind: 'federated', tokenFile: '/var/run/secrets/azure/tokens/azure-identity-token' });
    const flagged = await loadConfig({ outputs: file, federatedTokenFile: '/flag/token' }, {});
    expect(flagged.config.credential).toEqual({ kind: 'federated', tokenFile: '/flag/token' });
    const managed = await loadConfig({ outputs: await outputsFile(outputs), credential: 'managedIdentity' }, {});
    expect(managed.config).toMatchObject({ credential: { kind: 'managedIdentity' }, clientId, secretExpiresAt: undefined });
  });

  it('takes a certificate path an operator added to the outputs over the outputs\' credential (a stack with both exports secret)', async () => {
    const { config } = await loadConfig({ outputs: await outputsFile({ ...outputs, credential: 'secret', clientCertificatePath: 'conn.pem' }) }, {});
    expect(config.credential).toEqual({ kind: 'certificate', path: resolve('conn.pem') });
  });

  it('uses the host\'s system-assigned managed identity when no client id is configured', async () => {
    const { clientId: _clientId, ...noClient } = noSecret;
    const { config } = await loadConfig({ outputs: await outputsFile({ ...noClient, credential: 'managedIdentity' }) }, {});
    expect(config).toMatchObject({ credential: { kind: 'managedIdentity' }, clientId: undefined });
    // Any other credential is an app's, and needs its client id.
    expect((await failure(loadConfig({ outputs: await outputsFile({ ...noClient, credential: 'federated' }) }, { AZURE_FEDERATED_TOKEN_FILE: 'token' }))).message).toMatch(/^clientId: missing$/);
  });
});

describe('invalid configuration: one line naming the field', () => {
  it.each([
    ['no tenant id', {}, { O365_TENANT_ID: undefined }, /^tenantId: missing$/, /--outputs <file>.*O365_TENANT_ID/],
    ['a domain as tenant id', {}, { O365_TENANT_ID: 'contoso.onmicrosoft.com' }, /^tenantId: must be a GUID, the directory \(tenant\) id, not the domain name \(got "contoso.onmicrosoft.com"\)$/, /pulumi stack output tenantId/],
    ['no client id', {}, { O365_CLIENT_ID: undefined }, /^clientId: missing$/, /O365_CLIENT_ID/],
    ['a client id that is not a GUID', {}, { O365_CLIENT_ID: 'o365-connector' }, /^clientId: must be a GUID, the application \(client\) id/, /pulumi stack output clientId/],
    ['no credential', {}, { O365_CLIENT_SECRET: undefined }, /^clientSecret: missing: no client secret, no certificate and no other credential$/, /--show-secrets.*--credential federated or managedIdentity/],
    ['an unknown cloud', {}, { O365_CLOUD: 'azure-germany' }, /^cloud: unknown cloud "azure-germany"$/, /commercial, gcc, gcchigh, dod, china/],
    ['an http authority', {}, { O365_AUTHORITY_HOST: 'http://login.example' }, /^authorityHost: must be https \(got http:\/\/\)$/, /never switched off/],
    ['an API root that is not a URL', {}, { O365_API_ROOT: 'manage.office.com' }, /^apiRoot: "manage.office.com" is not a URL$/, /https:\/\//],
    ['an API root with a query', {}, { O365_API_ROOT: 'https://manage.office.com/?x=1' }, /^apiRoot: .* must be a bare root URL/, /manage.office.com/],
    ['a publisher id that is not a GUID', {}, { O365_PUBLISHER_ID: 'soc-team' }, /^publisherId: must be a GUID \(got "soc-team"\)$/, /tenant id/],
    ['an unknown content type', {}, { O365_CONTENT_TYPES: 'Audit.General,Audit.Teams' }, /^O365_CONTENT_TYPES: unknown content type "Audit.Teams"$/, /DLP.All/],
    ['an unknown content type flag', { contentTypes: 'Exchange' }, {}, /^--content-types: unknown content type "Exchange"$/, /Audit.Exchange/],
  ] as const)('rejects %s', async (_name, flags, env, message, fix) => {
    const error = await failure(loadConfig(flags, { ...minimalEnv, ...env } as NodeJS.ProcessEnv));
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.message).toMatch(message);
    expect(error.fix).toMatch(fix);
    expect(error.toLine()).not.toContain('\n');
  });

  it('rejects an outputs file written without --show-secrets', async () => {
    const error = await failure(loadConfig({ outputs: await outputsFile({ ...outputs, clientSecret: '[secret]' }) }, {}));
    expect(error.message).toBe('clientSecret: is the placeholder "[secret]"');
  });

  it('rejects an outputs file that is missing or not the stack-outputs JSON', async () => {
    expect((await failure(loadConfig({ outputs: await outputsFile('clientSecret=abc') }, {}))).message).toMatch(/^--outputs: .* is not the JSON object that `pulumi stack output --json --show-secrets` prints$/);
    expect((await failure(loadConfig({ outputs: join(dir, 'nope.json') }, {}))).message).toMatch(/^--outputs: cannot read .*nope.json \(ENOENT\)$/);
  });

  it('rejects an unreadable clientSecretExpiry', async () => {
    expect((await failure(loadConfig({ outputs: await outputsFile({ ...outputs, clientSecretExpiry: 'next spring' }) }, {}))).message).toBe('clientSecretExpiry: "next spring" is not an ISO time');
  });

  it('says clearly when --stack is given but the Pulumi CLI is missing', async () => {
    const error = await failure(loadConfig({ stack: 'prod' }, { PATH: join(dir, 'empty-path') }));
    expect(error.message).toBe('--stack: the Pulumi CLI is not installed (or not on PATH)');
    expect(error.fix).toMatch(/--outputs <file>/);
  });

  it.each([
    ['an unknown content type', { contentTypes: ['Audit.General', 'Audit.Teams'] }, 'contentTypes: unknown content type "Audit.Teams"', /Audit.Exchange/],
    ['content types that are not a list', { contentTypes: 'Audit.General' }, 'contentTypes: must be a list', /Audit.Exchange/],
    ['a tenant id that is not a GUID', { tenantId: 'contoso.onmicrosoft.com' }, 'tenantId: must be a GUID, the directory (tenant) id, not the domain name (got "contoso.onmicrosoft.com")', /pulumi stack output tenantId/],
    ['a subscription id that is not a GUID', { subscriptionId: 'logging' }, 'subscriptionId: must be a GUID (got "logging")', /--show-secrets/],
    ['a Key Vault URI over http', { keyVaultUri: 'http://kv.vault.azure.net/' }, 'keyVaultUri: must be an https URL', /--show-secrets/],
    ['a cloud that is not text', { cloud: 3 }, 'cloud: must be a string', /--show-secrets/],
  ] as const)('rejects an outputs file with %s, naming the output', async (_name, change, message, fix) => {
    const error = await failure(loadConfig({ outputs: await outputsFile({ ...outputs, ...change }) }, {}));
    expect(error.message).toBe(message);
    expect(error.fix).toMatch(fix);
  });

  it('never shows the secret when the secret itself is invalid', async () => {
    const error = await failure(loadConfig({ outputs: await outputsFile({ ...outputs, clientSecret: { value: outputs.clientSecret } }) }, {}));
    expect(error.message).toBe('clientSecret: must be the client secret, a string');
    expect(error.toLine()).not.toContain(outputs.clientSecret);
  });

  it('ignores outputs it does not know (a stack may export more)', async () => {
    const { config } = await loadConfig({ outputs: await outputsFile({ ...outputs, extra: { nested: true } }) }, {});
    expect(config.tenantId).toBe(tenantId);
  });

  it('never puts the secret in a configuration error', async () => {
    const error = await failure(loadConfig({ outputs: await outputsFile({ ...outputs, cloud: 'mars' }) }, {}));
    expect(error.toLine()).not.toContain(outputs.clientSecret);
  });
});

describe('--since', () => {
  const now = new Date('2026-11-25T12:00:00Z');
  it('reads a duration back from now or an ISO time (UTC without a zone)', () => {
    expect(parseSince('36h', now)).toEqual(new Date('2026-11-24T00:00:00Z'));
    expect(parseSince('7d', now)).toEqual(new Date('2026-11-18T12:00:00Z'));
    expect(parseSince('90m', now)).toEqual(new Date('2026-11-25T10:30:00Z'));
    expect(parseSince('2026-11-20T00:00:00Z', now)).toEqual(new Date('2026-11-20T00:00:00Z'));
    expect(parseSince('2026-11-20T06:00', now)).toEqual(new Date('2026-11-20T06:00:00Z'));
    expect(parseSince('2026-11-20', now)).toEqual(new Date('2026-11-20T00:00:00Z'));
  });

  it('refuses the future and anything else, naming the flag', () => {
    expect(() => parseSince('2027-01-01', now)).toThrow(/^--since: 2027-01-01 is in the future$/);
    expect(() => parseSince('last tuesday', now)).toThrow(/^--since: "last tuesday" is neither an ISO time nor a duration$/);
    expect(() => parseSince('12', now)).toThrow(/neither an ISO time nor a duration/);
  });

  it.each([
    ['2026-02-30', '--since: 2026-02-30 is not a date: February 2026 has 28 days'],
    ['2024-02-30', '--since: 2024-02-30 is not a date: February 2024 has 29 days'],
    ['2026-11-31T00:00:00Z', '--since: 2026-11-31T00:00:00Z is not a date: November 2026 has 30 days'],
    ['2026-13-01', '--since: 2026-13-01 has no month 13'],
    ['2026-11-20T24:00', '--since: 2026-11-20T24:00 is not a time of day'],
  ])('refuses %s, a day or time that does not exist, instead of rolling it over', (value, message) => {
    expect(() => parseSince(value, now)).toThrow(message);
  });
});

describe('contradictions between the environment and the outputs', () => {
  it('refuses O365_CLOUD naming one cloud beside outputs whose endpoints are another\'s', async () => {
    const file = await outputsFile({ ...outputs, cloud: 'commercial', apiRoot: 'https://manage.office.com', authorityHost: 'https://login.microsoftonline.com' });
    const error = await failure(loadConfig({ outputs: file }, { O365_CLOUD: 'gcchigh' }));
    expect(error.message).toBe("O365_CLOUD: gcchigh contradicts the outputs' apiRoot https://manage.office.com (the commercial cloud's)");
    expect(error.fix).toBe('unset O365_CLOUD to use the outputs as they are, set O365_API_ROOT too, or write the outputs again from a stack configured with cloud gcchigh');
  });

  it('accepts endpoints that agree with O365_CLOUD, and endpoints set beside it in the environment', async () => {
    const file = await outputsFile({ ...outputs, cloud: 'commercial', apiRoot: 'https://manage.office365.us', authorityHost: 'https://login.microsoftonline.us' });
    expect((await loadConfig({ outputs: file }, { O365_CLOUD: 'gcchigh' })).config.apiRoot).toBe('https://manage.office365.us');
    const local = await outputsFile({ ...outputs, cloud: 'commercial', apiRoot: 'https://127.0.0.1:8443', authorityHost: 'https://127.0.0.1:8443' });
    const { config } = await loadConfig({ outputs: local }, { O365_CLOUD: 'gcc', O365_API_ROOT: 'https://127.0.0.1:9443', O365_AUTHORITY_HOST: 'https://127.0.0.1:9443' });
    expect([config.cloud, config.apiRoot]).toEqual(['gcc', 'https://127.0.0.1:9443']);
  });
});

describe('outputs files as other tools write them', () => {
  const json = JSON.stringify({ ...outputs, clientSecret: 'Q~wide-é-secret' }, null, 2);
  it.each([
    ['UTF-8 with a byte-order mark', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(json, 'utf8')])],
    ['UTF-16 little-endian with a mark (Windows PowerShell 5.1 >)', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(json, 'utf16le')])],
    ['UTF-16 big-endian with a mark', Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from(json, 'utf16le').swap16()])],
    ['UTF-16 little-endian without a mark', Buffer.from(json, 'utf16le')],
  ])('reads %s', async (_what, bytes) => {
    const file = join(dir, `encoded-${(files += 1)}.json`);
    await writeFile(file, bytes);
    const { config } = await loadConfig({ outputs: file }, {});
    expect(config.credential).toEqual({ kind: 'secret', secret: 'Q~wide-é-secret' });
    expect(config.tenantId).toBe(tenantId);
  });

  it('warns when the outputs file, which holds the secret, is readable by other users', async () => {
    const file = await outputsFile(outputs);
    await chmod(file, 0o644);
    expect((await loadConfig({ outputs: file }, {})).warnings).toEqual([`${file} holds the client secret and is readable by every user (mode 0644): chmod 600 it`]);
    await chmod(file, 0o640);
    expect((await loadConfig({ outputs: file }, {})).warnings).toEqual([`${file} holds the client secret and is readable by its group (mode 0640): chmod 600 it`]);
    await chmod(file, 0o600);
    expect((await loadConfig({ outputs: file }, {})).warnings).toEqual([]);
  });
});

