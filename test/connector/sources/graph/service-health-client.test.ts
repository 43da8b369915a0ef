import { afterEach, describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MockAgent } from 'undici';
import { loadConfig } from '../../../../connector/config/config.ts';
import { clouds, type CloudName } from '../../../../contract/clouds.ts';
import { TenantRuntimes } from '../../../../connector/run/tenant-runtimes.ts';
import { defaultRunSettings } from '../../../../connector/config/settings.ts';
import { graphPage } from '../../../../connector/sources/graph/graph-page.ts';
import { createLogger } from '../../../../connector/observe/log.ts';
import { Telemetry } from '../../../../connector/observe/telemetry.ts';
import { workDir } from '../../../e2e/support.ts';

const tenantId = '4a1f7c0e-2b6d-4e8a-9c3f-0d5e6b7a8c91';
const clientId = '3f9a6c2e-8d41-4b7a-9e05-6c1d2b3a4f58';
const agents: MockAgent[] = [];
afterEach(async () => { await Promise.all(agents.splice(0).map((agent) => agent.close())); });

function token(aud: string, roles: string[]): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ typ: 'JWT', alg: 'RS256' })}.${part({ aud, tid: tenantId, roles, exp: 1_900_000_000 })}.signature`;
}

describe('sovereign clouds: Microsoft Graph for service health', () => {
  it.each([
    ['commercial', 'https://graph.microsoft.com', 'https://login.microsoftonline.com'],
    ['gcc', 'https://graph.microsoft.com', 'https://login.microsoftonline.com'],
    ['gcchigh', 'https://graph.microsoft.us', 'https://login.microsoftonline.us'],
    ['dod', 'https://dod-graph.microsoft.us', 'https://login.microsoftonline.us'],
    ['china', 'https://microsoftgraph.chinacloudapi.cn', 'https://login.partner.microsoftonline.cn'],
  ] as const)('%s: Graph root %s (tokens for %s are asked for <root>/.default), service announcements listed there', async (cloud: CloudName, graphRoot, authorityHost) => {
    const dir = await workDir();
    const file = join(dir, 'outputs.json');
    await writeFile(file, JSON.stringify({ connectorName: 'c', tenantId, tenantDomain: 'contoso.onmicrosoft.com', clientId, clientSecret: 's3cr3t-value', publisherId: tenantId, cloud, authorityHost: clouds[cloud].authorityHost, apiRoot: clouds[cloud].apiRoot, contentTypes: ['ServiceHealth'] }), { mode: 0o600 });
    const { config } = await loadConfig({ outputs: file }, {});
    expect(config.graphRoot).toBe(graphRoot);
    expect(config.contentTypes).toEqual(['ServiceHealth']);

    const agent = new MockAgent();
    agents.push(agent);
    agent.disableNetConnect();
    const requested: string[] = [];
    agent.get(graphRoot).intercept({ path: (path) => path.startsWith('/v1.0/admin/serviceAnnouncement/issues'), method: 'GET' }).reply(200, (options) => {
      requested.push(`${String(options.path)} ${String((options.headers as Record<string, string>)['authorization'])}`);
      return { '@odata.context': `${graphRoot}/v1.0/$metadata#admin/serviceAnnouncement/issues`, value: [{ id: 'EX1', lastModifiedDateTime: '2026-11-25T09:00:00Z', title: 't' }] };
    });
    // The tenant's Graph token provider asks the cloud's authority for the cloud's Graph (msal itself is covered by the stand-in tests).
    const runtimes = new TenantRuntimes({ proxy: undefined, logger: createLogger({ level: 'silent' }), telemetry: new Telemetry(), settings: defaultRunSettings, oneTenant: true });
    await runtimes.apply({ added: [{ file: '', fingerprint: '', config, reloadCredential: async () => undefined, warnings: [] }], changed: [], removed: [], problems: [] });
    const { clients } = runtimes.all()[0]!;
    await runtimes.close();
    expect(clients.graphTokens).not.toBe(clients.tokens);
    expect(clients.graphTokens.scope).toBe(`${graphRoot}/.default`);
    expect(clients.graphTokens.authority).toBe(`${authorityHost}/${tenantId}`);
    expect(clients.tokens.scope).toBe(`${clouds[cloud].apiRoot}/.default`);
    const { ServiceHealthClient } = await import('../../../../connector/sources/graph/service-health-client.ts');
    const client = new ServiceHealthClient({ graphRoot: config.graphRoot, dispatcher: agent, tokens: { getToken: async () => token(`${graphRoot}`, []), invalidate: () => {} } });
    const pages = [];
    for await (const page of client.listChanged('issues', new Date('2026-11-25T08:00:00Z'))) pages.push(page);
    expect(requested).toEqual([`/v1.0/admin/serviceAnnouncement/issues?%24filter=lastModifiedDateTime+ge+2026-11-25T08%3A00%3A00Z Bearer ${token(graphRoot, [])}`]);
    expect(pages.flat().map((item) => item.id)).toEqual(['EX1']);
  });

  it('refuses an @odata.nextLink off the Graph root: the token goes nowhere else', async () => {
    const agent = new MockAgent();
    agents.push(agent);
    agent.disableNetConnect();
    agent.get('https://graph.microsoft.us').intercept({ path: (path) => path.startsWith('/v1.0/admin/serviceAnnouncement/messages'), method: 'GET' })
      .reply(200, { value: [], '@odata.nextLink': 'https://graph.example.net/v1.0/admin/serviceAnnouncement/messages?$skip=100' });
    const { ServiceHealthClient } = await import('../../../../connector/sources/graph/service-health-client.ts');
    const client = new ServiceHealthClient({ graphRoot: 'https://graph.microsoft.us', dispatcher: agent, tokens: { getToken: async () => 'token', invalidate: () => {} } });
    const pages = client.listChanged('messages', new Date('2026-11-25T08:00:00Z'))[Symbol.asyncIterator]();
    await expect(pages.next()).rejects.toMatchObject({ code: 'UNTRUSTED_URI' });
  });
});

describe('a Graph page split into its items, as the bytes Graph sent', () => {
  it('keeps each item\'s exact bytes (compact or pretty-printed, escapes and big numbers untouched) and the nextLink', () => {
    const items = ['{"id":"MC1","lastModifiedDateTime":"2026-11-25T09:00:00Z","n":12345678901234567890,"t":"a \\"quoted\\" ] } , text","x":1.0}', '{"id":"EX2","lastModifiedDateTime":"2026-11-25T09:01:00.5Z","posts":[{"a":[1,{"b":"}"}]}]}'];
    const body = Buffer.from(`{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#x","@odata.nextLink":"https://graph.microsoft.com/v1.0/admin/serviceAnnouncement/messages?$skip=2","value":[${items.join(',')}]}`);
    const page = graphPage(body, 'messages');
    expect(page.items.map((item) => item.bytes.toString())).toEqual(items);
    expect(page.nextLink).toBe('https://graph.microsoft.com/v1.0/admin/serviceAnnouncement/messages?$skip=2');
    const pretty = Buffer.from(`{\n  "value": [\n    {\n      "id": "MC1",\n      "t": "line\\nbreak  kept"\n    }\n  ]\n}`);
    expect(graphPage(pretty, 'messages').items.map((item) => item.bytes.toString())).toEqual(['{"id":"MC1","t":"line\\nbreak  kept"}']);
    expect(graphPage(Buffer.from('{"value":[]}'), 'issues').items).toEqual([]);
    expect(() => graphPage(Buffer.from('{"value":[{"id":'), 'issues')).toThrow(/not complete JSON/);
  });
});
