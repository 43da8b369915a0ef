import { afterAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { Agent, request } from 'undici';
import { redactSecrets, registerSecret } from '../../../connector/observe/secret-values.ts';
import { startEmulator } from '../../emulator/index.ts';
import { createTestPki } from '../../emulator/tls.ts';
import { connectorOutputs } from '../../emulator/connector-config.ts';
import { workDir } from '../../e2e/support.ts';
import { ndjsonReceiver } from '../../receivers/http-receivers.ts';

const root = resolve(import.meta.dirname, '../../..');
const pki = await createTestPki();
const emulator = await startEmulator({ pki, seed: 5, days: 1 });
const agent = new Agent({ connect: { ca: await readFile(emulator.caFile, 'utf8') } });

/**
 * In front of the stand-in: forwards everything, except that the token endpoint refuses with an
 * error_description quoting the client_secret it was posted (as a careless or hostile endpoint might).
 */
async function echoingAuthority(): Promise<{ url: string; server: Server }> {
  const server = createServer({ cert: pki.server.certPem, key: pki.server.keyPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (req.method === 'POST' && /\/oauth2\/v2\.0\/token(\?|$)/.test(req.url ?? '')) {
        const posted = new URLSearchParams(body.toString()).get('client_secret') ?? '';
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: 'invalid_client', error_description: `AADSTS7777777: The client secret "${posted}" is not the one registered.\r\nTrace ID: 1`, error_codes: [7777777] }));
        return;
      }
      void request(`${emulator.authorityHost}${req.url}`, { method: req.method as 'GET', headers: { ...req.headers, host: new URL(emulator.authorityHost).host }, body: body.length ? body : null, dispatcher: agent }).then(async (answer) => {
        const text = await answer.body.text();
        res.writeHead(answer.statusCode, { 'content-type': String(answer.headers['content-type'] ?? 'application/json') });
        res.end(text.replaceAll(emulator.authorityHost, `https://127.0.0.1:${(server.address() as AddressInfo).port}`));
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

interface Result { code: number; stdout: string; stderr: string }
function cli(args: string[], env: Record<string, string>): Promise<Result> {
  return new Promise((resolveResult) => {
    execFile(process.execPath, [join(root, 'connector/bin.mjs'), ...args], { env: { ...process.env, NODE_EXTRA_CA_CERTS: emulator.caFile, O365_LOG_LEVEL: 'debug', ...env } }, (error, stdout, stderr) => {
      resolveResult({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

const authority = await echoingAuthority();
afterAll(async () => { authority.server.close(); await agent.close(); await emulator.stop(); });

describe('secrets echoed back by the other side', () => {
  it('cuts a secret out of any text, in its raw and its JSON-escaped forms', () => {
    registerSecret('pa"ss\\word-1234');
    expect(redactSecrets('said pa"ss\\word-1234 and {"x":"pa\\"ss\\\\word-1234"}')).toBe('said [redacted] and {"x":"[redacted]"}');
    registerSecret('abc'); // too short to be a secret: never cuts ordinary words
    expect(redactSecrets('abc')).toBe('abc');
  });

  it('never prints the client secret that a token endpoint quotes back in its error_description', async () => {
    const dir = await workDir();
    const outputs = join(dir, 'outputs.json');
    await writeFile(outputs, JSON.stringify({ ...connectorOutputs(emulator), authorityHost: authority.url }), { mode: 0o600 });
    const result = await cli(['test', '--outputs', outputs], {});
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/^error: AADSTS7777777: the identity platform refused the token request: The client secret "\[redacted\]" is not the one registered\./m);
    expect(`${result.stdout}${result.stderr}`).not.toContain(emulator.clientSecret);
  });

  it('never prints or stores a sink token that the receiver quotes back in its error body', async () => {
    const receiver = await ndjsonReceiver({ tls: { cert: pki.server.certPem, key: pki.server.keyPem } });
    const token = 'tok-7f3a9c2e51d84b6a';
    // The check before the first batch passes (HEAD); the batches are refused with the token quoted back.
    receiver.script('ok', ...Array.from({ length: 20 }, () => ({ status: 401, body: `{"error":"bad credentials: Bearer ${token}"}` })));
    try {
      const dir = await workDir();
      const outputs = join(dir, 'outputs.json');
      await writeFile(outputs, JSON.stringify(connectorOutputs(emulator)), { mode: 0o600 });
      const sink = `${receiver.url}/ingest?tokenEnv=COLLECTOR_TOKEN&ca=${emulator.caFile}`;
      const result = await cli(['run', '--once', '--outputs', outputs, '--since', '2h', '--content-types', 'Audit.General', '--state', join(dir, 'state'), '--sink', sink], { COLLECTOR_TOKEN: token });
      expect(result.code).toBe(6);
      expect(result.stderr).toContain('Bearer [redacted]');
      expect(`${result.stdout}${result.stderr}`).not.toContain(token);
      const status = await cli(['status', '--offline', '--json', '--state', join(dir, 'state')], {});
      expect(status.stdout).not.toContain(token);
    } finally {
      await receiver.close();
    }
  });
});
