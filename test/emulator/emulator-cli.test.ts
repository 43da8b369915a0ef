import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { Agent, request } from 'undici';
import { parseFaultRule } from './index.ts';

const script = resolve(import.meta.dirname, '../../scripts/emulator.ts');
let dir: string;

beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'o365-emulator-cli-')); });
afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

function run(args: string[]): { child: ChildProcess; firstLine: Promise<string>; exit: Promise<number | null>; stderr: () => string } {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString('utf8'); });
  const exit = new Promise<number | null>((resolveExit) => child.on('exit', (code) => resolveExit(code)));
  const firstLine = new Promise<string>((resolveLine, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolveLine);
    void exit.then(() => reject(new Error(`exited before printing: ${stderr}`)));
  });
  return { child, firstLine, exit, stderr: () => stderr };
}

describe('npm run emulator', () => {
  it('prints exactly one JSON line, writes the configuration in the stack-outputs form, serves it, and stops on SIGTERM', async () => {
    const outputs = join(dir, 'outputs.json');
    const emulator = run(['--seed', '5', '--enable', 'all', '--fault', 'throttle@1', '--throttle-status', '403', '--config-out', outputs]);
    const line = JSON.parse(await emulator.firstLine);
    expect(Object.keys(line)).toEqual(['port', 'caFile', 'tenantId', 'clientId', 'clientSecret', 'authorityHost', 'apiRoot']);
    expect(line.authorityHost).toBe(`https://127.0.0.1:${line.port}`);
    const config = JSON.parse(await readFile(outputs, 'utf8'));
    expect(config).toEqual({
      connectorName: expect.any(String), tenantId: line.tenantId, tenantDomain: 'contoso.onmicrosoft.com', clientId: line.clientId,
      clientSecret: line.clientSecret, publisherId: line.tenantId, cloud: 'commercial', clientSecretExpiry: expect.stringMatching(/Z$/),
      contentTypes: ['Audit.AzureActiveDirectory', 'Audit.Exchange', 'Audit.SharePoint', 'Audit.General', 'DLP.All'],
      authorityHost: line.authorityHost, apiRoot: line.apiRoot, graphRoot: `${line.apiRoot}/graph`, auditSearch: true, caFile: line.caFile,
    });
    const agent = new Agent({ connect: { ca: await readFile(line.caFile, 'utf8') } });
    try {
      const token = await (await request(`${line.authorityHost}/${line.tenantId}/oauth2/v2.0/token`, {
        method: 'POST', dispatcher: agent, headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: line.clientId, client_secret: line.clientSecret, scope: `${line.apiRoot}/.default` }).toString(),
      })).body.json() as { access_token: string };
      const list = async () => request(`${line.apiRoot}/api/v1.0/${line.tenantId}/activity/feed/subscriptions/list?PublisherIdentifier=${line.tenantId}`, { dispatcher: agent, headers: { authorization: `Bearer ${token.access_token}` } });
      const throttled = await list();
      expect(throttled.statusCode).toBe(403);
      expect(await throttled.body.json()).toMatchObject({ error: { code: 'AF429' } });
      const listed = await list();
      expect((await listed.body.json() as unknown[]).length).toBe(5);
    } finally {
      await agent.close();
    }
    emulator.child.kill('SIGTERM');
    expect(await emulator.exit).toBe(0);
  });

  it('serves --tenants n on one port and writes each one\'s configuration to --outputs-dir as <tenantId>.json', async () => {
    const outputsDir = join(dir, 'tenants');
    const emulator = run(['--seed', '6', '--tenants', '3', '--quiet-tenants', '--enable', 'Audit.General', '--outputs-dir', outputsDir]);
    const line = JSON.parse(await emulator.firstLine);
    expect(line).toMatchObject({ tenants: 3, outputsDir });
    const files = (await readdir(outputsDir)).sort();
    expect(files).toHaveLength(3);
    expect(files).toContain(`${line.tenantId}.json`);
    const configs = await Promise.all(files.map(async (file) => JSON.parse(await readFile(join(outputsDir, file), 'utf8'))));
    expect(new Set(configs.map((config) => config.clientId)).size).toBe(3);
    for (const file of files) expect((await stat(join(outputsDir, file))).mode & 0o777).toBe(0o600);
    const other = configs.find((config) => config.tenantId !== line.tenantId)!;
    expect(files).toContain(`${other.tenantId}.json`);
    const agent = new Agent({ connect: { ca: await readFile(line.caFile, 'utf8') } });
    try {
      const token = await (await request(`${other.authorityHost}/${other.tenantId}/oauth2/v2.0/token`, {
        method: 'POST', dispatcher: agent, headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: other.clientId, client_secret: other.clientSecret, scope: `${other.apiRoot}/.default` }).toString(),
      })).body.json() as { access_token: string };
      const listed = await request(`${other.apiRoot}/api/v1.0/${other.tenantId}/activity/feed/subscriptions/list?PublisherIdentifier=${other.tenantId}`, { dispatcher: agent, headers: { authorization: `Bearer ${token.access_token}` } });
      expect(await listed.body.json()).toEqual([{ contentType: 'Audit.General', status: 'enabled', webhook: null }]);
    } finally {
      await agent.close();
    }
    emulator.child.kill('SIGTERM');
    expect(await emulator.exit).toBe(0);
  });

  it('serves the audit search with the --audit-search-* knobs, and --no-audit-search takes its permission away', async () => {
    const tokenFor = async (agent: Agent, config: { authorityHost: string; tenantId: string; clientId: string; clientSecret: string; graphRoot: string }) => (await (await request(`${config.authorityHost}/${config.tenantId}/oauth2/v2.0/token`, {
      method: 'POST', dispatcher: agent, headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: config.clientId, client_secret: config.clientSecret, scope: `${config.graphRoot}/.default` }).toString(),
    })).body.json() as { access_token: string }).access_token;
    const createQuery = (agent: Agent, graphRoot: string, token: string) => request(`${graphRoot}/v1.0/security/auditLog/queries`, {
      method: 'POST', dispatcher: agent, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ filterStartDateTime: '2026-01-01T00:00:00Z', filterEndDateTime: '2026-01-02T00:00:00Z' }),
    });
    for (const granted of [true, false]) {
      const outputs = join(dir, `audit-search-${granted}.json`);
      const emulator = run(['--seed', '8', '--audit-search-polls', '1', '--audit-search-record-limit', '5', '--config-out', outputs, ...(granted ? [] : ['--no-audit-search'])]);
      const line = JSON.parse(await emulator.firstLine);
      const config = JSON.parse(await readFile(outputs, 'utf8'));
      expect(config.auditSearch).toBe(granted ? true : undefined);
      const agent = new Agent({ connect: { ca: await readFile(line.caFile, 'utf8') } });
      try {
        const token = await tokenFor(agent, config);
        const created = await createQuery(agent, config.graphRoot, token);
        expect(created.statusCode).toBe(granted ? 201 : 403);
        const body = await created.body.json() as { id: string; recordCountLimit: number };
        if (granted) {
          expect(body.recordCountLimit).toBe(5);
          const polled = await request(`${config.graphRoot}/v1.0/security/auditLog/queries/${body.id}`, { dispatcher: agent, headers: { authorization: `Bearer ${token}` } });
          expect(await polled.body.json()).toMatchObject({ status: 'succeeded' });
        }
      } finally {
        await agent.close();
      }
      emulator.child.kill('SIGTERM');
      expect(await emulator.exit).toBe(0);
    }
  });

  it('refuses a malformed fault rule in one line', async () => {
    const emulator = run(['--fault', 'flood@1']);
    await expect(emulator.firstLine).rejects.toThrow();
    expect(await emulator.exit).not.toBe(0);
    expect(emulator.stderr().trim().split('\n')).toHaveLength(1);
    expect(emulator.stderr()).toMatch(/"flood@1": expected kind@from-to/);
  });
});

describe('fault rule syntax', () => {
  it.each([
    ['throttle@3', { fault: 'throttle', from: 3, to: 3 }],
    ['server-error@5-9', { fault: 'server-error', from: 5, to: 9 }],
    ['drop@10-', { fault: 'drop', from: 10 }],
    ['expired@every:4/audit', { fault: 'expired', every: 4, routes: ['audit'] }],
    ['latency@2-20,every:2/subscriptions/content,audit', { fault: 'latency', from: 2, to: 20, every: 2, routes: ['subscriptions/content', 'audit'] }],
  ])('reads %s', (spec, rule) => {
    expect(parseFaultRule(spec)).toEqual(rule);
  });

  it.each(['throttle', 'throttle@0', 'throttle@every:0', 'throttle@1/feed', 'nap@1'])('refuses %s', (spec) => {
    expect(() => parseFaultRule(spec)).toThrow();
  });
});
