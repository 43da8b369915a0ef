import { describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadConfig, parseSince } from '../../../connector/config/config.ts';
import { workDir } from '../../e2e/support.ts';

const outputs = {
  connectorName: 'soc', tenantId: '2f0c3a11-6c55-4d8a-9a1e-0d7d2c1b4e77', tenantDomain: 'contoso.onmicrosoft.com',
  clientId: '0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e', clientSecret: 'file-secret', publisherId: '2f0c3a11-6c55-4d8a-9a1e-0d7d2c1b4e77',
  cloud: 'gcchigh', contentTypes: ['Audit.General', 'Audit.Exchange'],
};

async function outputsFile(content: unknown): Promise<string> {
  const file = join(await workDir(), 'outputs.json');
  await writeFile(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

describe('configuration', () => {
  it('reads the stack outputs and derives endpoints from the cloud table', async () => {
    const { config } = await loadConfig({ outputs: await outputsFile(outputs) }, {});
    expect(config).toMatchObject({ tenantId: outputs.tenantId, clientId: outputs.clientId, credential: { kind: 'secret', secret: 'file-secret' }, cloud: 'gcchigh', authorityHost: 'https://login.microsoftonline.us', apiRoot: 'https://manage.office365.us', contentTypes: ['Audit.General', 'Audit.Exchange'] });
  });

  it('gives flags precedence over environment over the outputs file', async () => {
    const file = await outputsFile(outputs);
    const { config } = await loadConfig({ outputs: file, contentTypes: 'DLP.All', state: '/var/lib/o365' }, { O365_CLIENT_SECRET: 'env-secret', O365_CONTENT_TYPES: 'Audit.SharePoint', O365_CLOUD: 'commercial', O365_STATE_DIR: '/tmp/ignored' });
    expect(config.credential).toEqual({ kind: 'secret', secret: 'env-secret' });
    expect(config.contentTypes).toEqual(['DLP.All']);
    expect(config.apiRoot).toBe('https://manage.office.com');
    expect(config.stateDir).toBe('/var/lib/o365');
  });

  it('defaults the publisher id to the tenant id and all content types', async () => {
    const { config } = await loadConfig({}, { O365_TENANT_ID: outputs.tenantId, O365_CLIENT_ID: outputs.clientId, O365_CLIENT_SECRET: 's' });
    expect(config.publisherId).toBe(outputs.tenantId);
    expect(config.contentTypes).toHaveLength(5);
  });

  it.each([
    [{ O365_CONTENT_TYPES: 'Audit.Teams' }, /O365_CONTENT_TYPES: unknown content type "Audit.Teams"/],
    [{ O365_PUBLISHER_ID: 'soc-team' }, /publisherId: "soc-team" must be a GUID/],
    [{ O365_AUTHORITY_HOST: 'http://login.example' }, /authorityHost: must be https/],
    [{ O365_CLIENT_SECRET: undefined }, /clientSecret: missing/],
  ])('rejects %j with one line naming the field', async (env, message) => {
    const base = { O365_TENANT_ID: outputs.tenantId, O365_CLIENT_ID: outputs.clientId, O365_CLIENT_SECRET: 's', ...env };
    await expect(loadConfig({}, base as NodeJS.ProcessEnv)).rejects.toThrow(message);
  });

  it('rejects an outputs file that is not the stack-outputs JSON', async () => {
    await expect(loadConfig({ outputs: await outputsFile('clientSecret=abc') }, {})).rejects.toThrow(/--outputs: .* is not the JSON object/);
  });

  it('reads --since as a duration or an ISO time, and refuses the future', () => {
    const now = new Date('2026-11-25T12:00:00Z');
    expect(parseSince('36h', now)).toEqual(new Date('2026-11-24T00:00:00Z'));
    expect(parseSince('7d', now)).toEqual(new Date('2026-11-18T12:00:00Z'));
    expect(parseSince('2026-11-20T00:00:00Z', now)).toEqual(new Date('2026-11-20T00:00:00Z'));
    expect(() => parseSince('2027-01-01', now)).toThrow(/in the future/);
  });
});
