import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../connector/config/config.ts';
import { tenantId, unwrapSecret } from './mocks.ts';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../../', import.meta.url));
const driver = fileURLToPath(new URL('./entry-under-mocks.ts', import.meta.url));

async function program(settings: Record<string, string>): Promise<{ outputs: Record<string, unknown>; resources: string[] }> {
  // process.execPath is the pinned Node 24 that npm put first on PATH, the one `npm run pulumi -- up` runs.
  const { stdout } = await run(process.execPath, [driver, JSON.stringify(settings)], { cwd: root });
  return JSON.parse(stdout) as { outputs: Record<string, unknown>; resources: string[] };
}

const scratch = await mkdtemp(join(tmpdir(), 'o365-infra-'));
afterAll(() => rm(scratch, { recursive: true, force: true }));

describe('the program as Pulumi runs it (Pulumi.yaml main, Node type stripping)', () => {
  it('loads Pulumi.yaml\'s main under Node\'s own type stripping and exports the connector configuration, only the secret as a secret', async () => {
    const { outputs, resources } = await program({ 'o365-connector:cloud': 'gcc' });
    expect(Object.keys(outputs).sort()).toEqual([
      'apiRoot', 'auditSearch', 'authorityHost', 'clientId', 'clientSecret', 'clientSecretExpiry', 'cloud', 'connectorName', 'contentTypes', 'credential', 'graphRoot', 'publisherId', 'tenantDomain', 'tenantId',
    ]);
    expect(unwrapSecret(outputs['clientSecret'])).toBe('value-of-o365-connector-secret-0');
    expect(outputs['apiRoot']).toBe('https://manage-gcc.office.com');
    expect(resources).toContain('azuread:index/application:Application o365-connector');
  });

  it('writes stack outputs that the connector reads as its configuration (pulumi stack output --json --show-secrets > file)', async () => {
    const { outputs } = await program({ 'o365-connector:permissions': 'ActivityFeed.Read,ServiceHealth.Read', 'o365-connector:displayName': 'Contoso SOC' });
    const shown = { ...outputs, clientSecret: unwrapSecret(outputs['clientSecret']) };
    const file = join(scratch, 'outputs.json');
    await writeFile(file, JSON.stringify(shown, null, 2));
    const { config } = await loadConfig({ outputs: file }, {});
    expect(config).toMatchObject({
      connectorName: 'Contoso SOC',
      tenantId,
      tenantDomain: 'contoso.onmicrosoft.com',
      clientId: '3f9a6c2e-8d41-4b7a-9e05-6c1d2b3a4f58',
      credential: { kind: 'secret', secret: 'value-of-o365-connector-secret-0' },
      publisherId: tenantId,
      cloud: 'commercial',
      authorityHost: 'https://login.microsoftonline.com',
      apiRoot: 'https://manage.office.com',
      graphRoot: 'https://graph.microsoft.com',
      contentTypes: ['Audit.AzureActiveDirectory', 'Audit.Exchange', 'Audit.SharePoint', 'Audit.General', 'ServiceHealth'],
    });
  });

  it('runs a home stack and a customer stack through the same entry (the program\'s default export is awaited)', async () => {
    const home = await program({ 'o365-connector:mode': 'home' });
    expect(Object.keys(home.outputs).sort()).toEqual([
      'adminConsentUrl', 'clientId', 'clientSecret', 'clientSecretExpiry', 'cloud', 'connectorName', 'credential', 'delegatedPermissions', 'graphPermissions', 'homeTenantId', 'mode', 'permissions',
    ]);
    const customer = await program({ 'o365-connector:mode': 'customer', 'o365-connector:homeStack': 'acme/o365-connector/home' });
    expect(unwrapSecret(customer.outputs['clientSecret'])).toBe('home-secret-generation-3');
    expect(customer.resources).toContain('azuread:index/servicePrincipal:ServicePrincipal o365-connector');
    expect(customer.resources.filter((resource) => resource.startsWith('azuread:index/application:'))).toEqual([]);
  });

  it('stops with one line naming the fix when the Node running it cannot strip types', async () => {
    const script = `const m = await import(${JSON.stringify(join(root, 'infra/main.mjs'))}); try { await m.default(); } catch (e) { console.log(JSON.stringify({ name: e.constructor.name, message: e.message })); }`;
    const { stdout } = await run(process.execPath, ['--no-experimental-strip-types', '--input-type=module', '-e', script], { cwd: root });
    const error = JSON.parse(stdout) as { name: string; message: string };
    expect(error.name).toBe('RunError');
    expect(error.message).toMatch(/^o365-connector's Pulumi program is TypeScript run by Node's type stripping \(Node >= 22\.18\), which the Node v\d+\.\d+\.\d+ running it does not do\. Run the CLI through npm so the pinned Node 24 is used: npm run pulumi -- up$/);
  });

  it('tells Pulumi not to load ts-node and points main at the plain-JavaScript entry', async () => {
    const project = await readFile(join(root, 'Pulumi.yaml'), 'utf8');
    expect(project).toMatch(/^runtime:\n {2}name: nodejs\n {2}options:\n(?: {4}\w+: .+\n)*? {4}typescript: false\n/m);
    expect(project).toMatch(/^main: infra\/main\.mjs$/m);
  });
});
