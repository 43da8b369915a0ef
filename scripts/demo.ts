// `npm run demo`: start the local stand-in for Microsoft, write a connector configuration in the Pulumi
// stack-outputs form, and show audit records flowing from it within seconds.
//   npm run demo              the real connector: test, run --once to stdout and a file, the same run again (adds nothing), status
//   npm run demo -- --smoke   a few lines of undici against the stand-in alone (no connector involved)
import { spawn } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { relative, resolve } from 'node:path';
import { Agent, request } from 'undici';
import { contentTypes } from '../contract/content-types.ts';
import { startEmulator, type Emulator } from '../test/emulator/index.ts';
import { connectorOutputs } from '../test/emulator/connector-config.ts';

const demoDir = resolve('.o365-demo');
const outputsFile = resolve(demoDir, 'outputs.json');
const stateDir = resolve(demoDir, 'state');
const auditFile = resolve(demoDir, 'audit.ndjson');
const bin = resolve(import.meta.dirname, '../connector/bin.mjs');
const seed = 42;
/** The one command that serves the demo's outputs file again: the same stand-in (same seed, same ids and secret), its new port written into the file. */
const serveAgain = `npm run emulator -- --seed ${seed} --config-out ${relative(process.cwd(), outputsFile)}`;

function say(line: string): void {
  process.stderr.write(`${line}\n`);
}

function connector(args: string[]): Promise<number> {
  say(`\n$ npx o365-connector ${args.join(' ')}`);
  return new Promise((resolveExit) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: 'inherit', env: { ...process.env, O365_LOG_LEVEL: process.env['O365_LOG_LEVEL'] ?? 'warn' } });
    child.on('exit', (code) => resolveExit(code ?? 1));
  });
}

/** Records in the demo's file: what the second run must leave unchanged. */
async function linesIn(file: string): Promise<number> {
  return (await readFile(file, 'utf8').catch(() => '')).split('\n').filter(Boolean).length;
}

/**
 * The real connector against the stand-in: test, a first run (stdout and a file), a second run on the same state that
 * adds nothing, and status (each run ends with a sweep, which status shows). The exit code of the first step that
 * fails, or 0.
 */
async function runConnector(): Promise<number> {
  // An overlap shorter than the 3 hours collected, so that the sweep ending each run has a range of its own to list.
  const run = ['run', '--once', '--since', '3h', '--overlap', '60', '--outputs', outputsFile, '--state', stateDir, '--requests-per-minute', '6000'];
  const first = await connector(['test', '--outputs', outputsFile]) || await connector([...run, '--sink', 'stdout', '--sink', `file:${auditFile}`]);
  if (first !== 0) return first;
  const delivered = await linesIn(auditFile);
  say(`\ndemo: the first run wrote ${delivered} records to ${auditFile}. The same command again, on the same state:`);
  const second = await connector([...run, '--sink', `file:${auditFile}`]);
  if (second !== 0) return second;
  const added = (await linesIn(auditFile)) - delivered;
  say(`demo: the second run added ${added} records (the file still holds ${delivered}): every blob and record Id already delivered is remembered in ${stateDir}.`);
  const status = await connector(['status', '--outputs', outputsFile, '--state', stateDir]);
  if (status !== 0) return status;
  say(`\ndemo: done. The stand-in stopped with the demo, so ${relative(process.cwd(), outputsFile)} now points at nothing (ECONNREFUSED).`
    + ` To use it again, serve it in another terminal with\n  ${serveAgain}\nthen: npx o365-connector test --outputs ${relative(process.cwd(), outputsFile)}`);
  return added === 0 ? 0 : 1;
}

/** Without the connector: token, subscriptions, one listing per content type, a few records, a summary. */
async function runSmokeClient(emulator: Emulator): Promise<number> {
  const agent = new Agent({ connect: { ca: emulator.caCertPem } });
  try {
    const tokenAnswer = await request(`${emulator.authorityHost}/${emulator.tenantId}/oauth2/v2.0/token`, {
      method: 'POST', dispatcher: agent, headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: emulator.clientId, client_secret: emulator.clientSecret, scope: `${emulator.apiRoot}/.default` }).toString(),
    });
    const { access_token: token } = await tokenAnswer.body.json() as { access_token: string };
    const feed = async (path: string, method: 'GET' | 'POST' = 'GET') => {
      const url = path.startsWith('https://') ? new URL(path) : new URL(`${emulator.apiRoot}/api/v1.0/${emulator.tenantId}/activity/feed/${path}`);
      url.searchParams.set('PublisherIdentifier', emulator.tenantId);
      const answer = await request(url, { method, dispatcher: agent, headers: { authorization: `Bearer ${token}` } });
      return { status: answer.statusCode, body: await answer.body.json().catch(() => undefined) as unknown };
    };
    let blobs = 0;
    let records = 0;
    for (const contentType of contentTypes) {
      await feed(`subscriptions/start?contentType=${contentType}`, 'POST');
      const listing = await feed(`subscriptions/content?contentType=${contentType}`);
      const entries = listing.body as Array<{ contentUri: string }>;
      for (const entry of entries.slice(0, 3)) {
        const blob = (await feed(entry.contentUri)).body as Array<Record<string, unknown>>;
        blobs += 1;
        records += blob.length;
        const first = blob[0];
        if (first) process.stdout.write(`${first['CreationTime']}  ${contentType.padEnd(26)} ${String(first['Operation']).padEnd(22)} ${first['UserId']}\n`);
      }
    }
    say(`\ndemo: smoke client fetched ${records} records from ${blobs} blobs across ${contentTypes.length} content types.`);
    return 0;
  } finally {
    await agent.close();
  }
}

await rm(demoDir, { recursive: true, force: true });
await mkdir(demoDir, { recursive: true });
const emulator = await startEmulator({ seed, days: 1, lateBlobRate: 0.1, duplicateRate: 0.05 });
let exitCode = 1;
try {
  await writeFile(outputsFile, JSON.stringify(connectorOutputs(emulator), null, 2) + '\n', { mode: 0o600 });
  say(`demo: Microsoft stand-in on ${emulator.apiRoot}; its configuration (the form of \`pulumi stack output --json --show-secrets\`) is in ${outputsFile}`);
  exitCode = process.argv.includes('--smoke') ? await runSmokeClient(emulator) : await runConnector();
} finally {
  await emulator.stop();
}
process.exitCode = exitCode;
