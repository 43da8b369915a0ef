// `npm run demo`: start the local stand-in, write a connector configuration in the Pulumi stack-outputs form,
// and run the real connector against it, so a newcomer sees audit records stream within seconds.
import { spawn } from 'node:child_process';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { startEmulator } from '../test/emulator/index.ts';
import { connectorOutputs } from '../test/emulator/connector-config.ts';

const demoDir = resolve('.o365-demo');
const outputsFile = resolve(demoDir, 'outputs.json');
const stateDir = resolve(demoDir, 'state');
const auditFile = resolve(demoDir, 'audit.ndjson');
const bin = resolve(import.meta.dirname, '../connector/bin.mjs');

function connector(args: string[]): Promise<number> {
  process.stderr.write(`\n$ npx o365-connector ${args.join(' ')}\n`);
  return new Promise((resolveExit) => {
    const child = spawn(process.execPath, [bin, ...args], { stdio: 'inherit', env: { ...process.env, O365_LOG_LEVEL: process.env['O365_LOG_LEVEL'] ?? 'warn' } });
    child.on('exit', (code) => resolveExit(code ?? 1));
  });
}

await rm(demoDir, { recursive: true, force: true });
await mkdir(demoDir, { recursive: true });
const emulator = await startEmulator({ seed: 42, days: 1, lateBlobRate: 0.1, duplicateRate: 0.05 });
let failed = 0;
try {
  await writeFile(outputsFile, JSON.stringify(connectorOutputs(emulator), null, 2) + '\n', { mode: 0o600 });
  process.stderr.write(`demo: Microsoft stand-in on ${emulator.apiRoot}; its configuration (the form of \`pulumi stack output --json --show-secrets\`) is in ${outputsFile}\n`);
  const steps = [
    ['test', '--outputs', outputsFile],
    ['run', '--once', '--since', '3h', '--outputs', outputsFile, '--state', stateDir, '--sink', 'stdout', '--sink', `file:${auditFile}`, '--requests-per-minute', '6000'],
    ['status', '--outputs', outputsFile, '--state', stateDir],
  ];
  for (const step of steps) {
    const code = await connector(step);
    if (code !== 0) { failed = code; break; }
  }
  if (!failed) process.stderr.write(`\ndemo: done. The same records are in ${auditFile}; run it again and nothing is duplicated.\n`);
} finally {
  await emulator.stop();
}
process.exitCode = failed;
