// `npm run demo`: start the local stand-in, write a connector configuration in the Pulumi stack-outputs form,
// and stream its audit records, so a newcomer sees the whole path work within seconds.
import { mkdir, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { startEmulator, type Emulator } from '../test/emulator/index.ts';
import { connectorOutputs } from '../test/emulator/connector-config.ts';
import { createHttpAgent } from '../connector/api/http-agent.ts';
import { MsalTokenProvider } from '../connector/auth/token-provider.ts';
import { request } from 'undici';

const demoDir = resolve('.o365-demo');
const outputsFile = resolve(demoDir, 'outputs.json');

/** Until the connector's run command exists: list the last day of Audit.General and print its records. */
async function streamWithSmokeClient(emulator: Emulator): Promise<void> {
  const agent = createHttpAgent({ caFile: emulator.caFile });
  const tokens = new MsalTokenProvider({
    tenantId: emulator.tenantId, clientId: emulator.clientId, credential: { kind: 'secret', secret: emulator.clientSecret },
    authorityHost: emulator.authorityHost, apiRoot: emulator.apiRoot, dispatcher: agent,
  });
  const feed = `${emulator.apiRoot}/api/v1.0/${emulator.tenantId}/activity/feed`;
  const get = async (url: string, method: 'GET' | 'POST' = 'GET') => {
    const response = await request(url, { method, dispatcher: agent, headers: { authorization: `Bearer ${await tokens.getToken()}` } });
    return { headers: response.headers, body: await response.body.json() as any };
  };
  await get(`${feed}/subscriptions/start?contentType=Audit.General&PublisherIdentifier=${emulator.tenantId}`, 'POST');
  let next: string | undefined = `${feed}/subscriptions/content?contentType=Audit.General&PublisherIdentifier=${emulator.tenantId}`;
  let records = 0;
  while (next) {
    const page = await get(next);
    for (const entry of page.body) {
      for (const record of (await get(entry.contentUri)).body) {
        process.stdout.write(JSON.stringify(record) + '\n');
        records += 1;
      }
    }
    next = page.headers['nextpageuri'] as string | undefined;
  }
  process.stderr.write(`demo: ${records} Audit.General records streamed from the stand-in\n`);
  await agent.close();
}

await mkdir(demoDir, { recursive: true });
const emulator = await startEmulator({ seed: 42, days: 1, lateBlobRate: 0.1, duplicateRate: 0.05 });
try {
  await writeFile(outputsFile, JSON.stringify(connectorOutputs(emulator), null, 2) + '\n', { mode: 0o600 });
  process.stderr.write(`demo: stand-in on ${emulator.apiRoot}; connector configuration written to ${outputsFile}\n`);
  await streamWithSmokeClient(emulator);
} finally {
  await emulator.stop();
}
