import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { ActivityClient } from '../../connector/api/activity-client.ts';
import { createHttpAgent } from '../../connector/api/http-agent.ts';
import { MsalTokenProvider } from '../../connector/auth/token-provider.ts';
import { createLogger } from '../../connector/status/log.ts';
import { Telemetry } from '../../connector/status/telemetry.ts';
import type { Emulator } from '../emulator/index.ts';
import { connectorOutputs } from '../emulator/connector-config.ts';

export async function workDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'o365-e2e-'));
}

export function quietLogger() {
  const lines: string[] = [];
  const destination = new Writable({ write(chunk, _e, done) { lines.push(String(chunk)); done(); } });
  return { logger: createLogger({ destination: destination as never, level: 'info' }), lines };
}

/** The real client stack (msal over undici, ActivityClient) against a stand-in, with fast retries for tests. */
export function connectTo(emulator: Emulator, options: { requestsPerMinute?: number; maxAttempts?: number } = {}) {
  const agent = createHttpAgent({ caFile: emulator.caFile });
  const tokens = new MsalTokenProvider({
    tenantId: emulator.tenantId, clientId: emulator.clientId, credential: { kind: 'secret', secret: emulator.clientSecret },
    authorityHost: emulator.authorityHost, apiRoot: emulator.apiRoot, dispatcher: agent,
  });
  const telemetry = new Telemetry();
  const api = new ActivityClient({
    apiRoot: emulator.apiRoot, tenantId: emulator.tenantId, publisherId: emulator.tenantId, tokens, dispatcher: agent,
    telemetry: telemetry.component('collector', 'source'), requestsPerMinute: options.requestsPerMinute ?? 60_000, maxInFlight: 8,
    retry: { maxAttempts: options.maxAttempts ?? 12, baseDelayMs: 5, maxDelayMs: 50 },
    now: () => emulator.now(),
  });
  return { agent, tokens, api, telemetry };
}

export async function writeOutputs(emulator: Emulator, dir: string, overrides: Record<string, unknown> = {}): Promise<string> {
  const file = join(dir, 'outputs.json');
  await writeFile(file, JSON.stringify({ ...connectorOutputs(emulator), ...overrides }, null, 2));
  return file;
}

export async function recordIds(file: string): Promise<string[]> {
  let text: string;
  try { text = await readFile(file, 'utf8'); } catch { return []; }
  return text.split('\n').filter(Boolean).map((line) => (JSON.parse(line) as { Id: string }).Id);
}

export function expectExactlyOnce(ids: string[], truth: Set<string>): { missing: number; duplicated: number; extra: number } {
  const seen = new Map<string, number>();
  for (const id of ids) seen.set(id, (seen.get(id) ?? 0) + 1);
  return {
    missing: [...truth].filter((id) => !seen.has(id)).length,
    duplicated: [...seen.values()].filter((n) => n > 1).length,
    extra: [...seen.keys()].filter((id) => !truth.has(id)).length,
  };
}
