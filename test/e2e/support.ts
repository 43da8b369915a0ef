import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { expect } from 'vitest';
import { ActivityClient } from '../../connector/sources/activity-api/activity-client.ts';
import { createHttpAgent } from '../../connector/http/http-agent.ts';
import { MsalTokenProvider } from '../../connector/auth/token-provider.ts';
import { ServiceHealthClient } from '../../connector/sources/graph/service-health-client.ts';
import { createLogger } from '../../connector/observe/log.ts';
import { Telemetry } from '../../connector/observe/telemetry.ts';
import type { Emulator } from '../emulator/index.ts';
import { connectorOutputs } from '../emulator/connector-config.ts';
import { defaultRunSettings } from '../../connector/config/settings.ts';

/** The client's limits as a run configures them (the settings table's defaults). */
const clientLimits = { requestsPerMinute: defaultRunSettings.requestsPerMinute, maxInFlight: defaultRunSettings.maxInFlight, maxBlobBytes: defaultRunSettings.maxBlobBytes, requestDeadlineMs: defaultRunSettings.requestDeadlineSeconds * 1000 };

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
  const api = new ActivityClient({ ...clientLimits,
    apiRoot: emulator.apiRoot, tenantId: emulator.tenantId, publisherId: emulator.tenantId, tokens, dispatcher: agent,
    telemetry: telemetry.component('collector', 'source'), requestsPerMinute: options.requestsPerMinute ?? 60_000, maxInFlight: 8,
    retry: { maxAttempts: options.maxAttempts ?? 12, baseDelayMs: 5, maxDelayMs: 50 },
    now: () => emulator.now(),
  });
  return { agent, tokens, api, telemetry };
}

export async function writeOutputs(emulator: Emulator, dir: string, overrides: Record<string, unknown> = {}): Promise<string> {
  const file = join(dir, 'outputs.json');
  // Private, as the README tells users to make it (the connector warns otherwise).
  await writeFile(file, JSON.stringify({ ...connectorOutputs(emulator), ...overrides }, null, 2), { mode: 0o600 });
  return file;
}

/** How records delivered as bytes compare with the stand-in's ground truth; all zero when exact. */
export interface ByteComparison {
  /** Ids in the ground truth not delivered. */
  missing: number;
  /** Ids delivered more than once. */
  duplicated: number;
  /** Records whose Id is not in the ground truth, or cannot be read (a torn or non-JSON line). */
  extra: number;
  /** Ids delivered with bytes other than the ground truth's (re-serialized, re-encoded, cut). */
  altered: number;
}

export const exactBytes: ByteComparison = { missing: 0, duplicated: 0, extra: 0, altered: 0 };

/**
 * Bytes split on "\n" with no decoding (a record's own bytes never hold a line feed: JSON escapes it in
 * strings). The empty piece after a final "\n" is no line; a last line without one (torn by a crash) is.
 */
export function splitLines(bytes: Buffer): Buffer[] {
  const lines: Buffer[] = [];
  let start = 0;
  for (let feed = bytes.indexOf(0x0a); feed !== -1; feed = bytes.indexOf(0x0a, start)) {
    lines.push(bytes.subarray(start, feed));
    start = feed + 1;
  }
  if (start < bytes.length) lines.push(bytes.subarray(start));
  return lines;
}

/** The lines of an NDJSON sink file as raw bytes (see splitLines); a missing file has none. */
export async function fileLines(file: string): Promise<Buffer[]> {
  try {
    return splitLines(await readFile(file));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

/** The record's Id, read from a decoded copy (the bytes themselves are only compared), or undefined. */
function idOf(record: Buffer): string | undefined {
  try {
    const parsed: unknown = JSON.parse(record.toString('utf8'));
    const id = typeof parsed === 'object' && parsed !== null ? (parsed as { Id?: unknown }).Id : undefined;
    return typeof id === 'string' ? id : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Checks records delivered as bytes (lines of a file sink, events of a receiver) against the ground truth by
 * bytes (`emulator.groundTruthBytes()`): every record exactly once, and each byte-identical to the record with
 * its Id as the stand-in served it.
 */
export function compareRecordBytes(records: Iterable<Buffer>, truth: ReadonlyMap<string, Buffer>): ByteComparison {
  const seen = new Map<string, number>();
  const altered = new Set<string>();
  let extra = 0;
  for (const record of records) {
    const id = idOf(record);
    const expected = id === undefined ? undefined : truth.get(id);
    if (id === undefined || expected === undefined) { extra += 1; continue; }
    seen.set(id, (seen.get(id) ?? 0) + 1);
    if (!record.equals(expected)) altered.add(id);
  }
  let missing = 0;
  for (const id of truth.keys()) if (!seen.has(id)) missing += 1;
  return { missing, duplicated: [...seen.values()].filter((n) => n > 1).length, extra, altered: altered.size };
}

/** compareRecordBytes over the lines of an NDJSON sink file. */
export async function compareFileBytes(file: string, truth: ReadonlyMap<string, Buffer>): Promise<ByteComparison> {
  return compareRecordBytes(await fileLines(file), truth);
}

/** For an assertion's message: the first record whose bytes differ from the ground truth, where they start to. */
function firstAlteration(records: Iterable<Buffer>, truth: ReadonlyMap<string, Buffer>): string {
  for (const record of records) {
    const id = idOf(record);
    const expected = id === undefined ? undefined : truth.get(id);
    if (id === undefined || expected === undefined || record.equals(expected)) continue;
    let at = 0;
    while (at < record.length && at < expected.length && record[at] === expected[at]) at += 1;
    const around = (bytes: Buffer) => JSON.stringify(bytes.subarray(Math.max(0, at - 20), at + 40).toString('utf8'));
    return `record ${id} differs from byte ${at}: expected ${around(expected)}, got ${around(record)}`;
  }
  return 'no record differs';
}

/** Asserts that records delivered as bytes are the ground truth exactly; the failure names the first altered one. */
export function expectExactBytes(records: readonly Buffer[], truth: ReadonlyMap<string, Buffer>): void {
  const comparison = compareRecordBytes(records, truth);
  // The message costs a second pass over every record: only worked out when something differs.
  const differs = Object.values(comparison).some((count) => count > 0);
  expect(comparison, differs ? firstAlteration(records, truth) : undefined).toEqual(exactBytes);
}

/**
 * The bytes of one member's value inside a JSON object, located without parsing it: how a receiver's envelope
 * (a Splunk HEC event, `{"time":…,"event":<record>}`) carries a record's bytes. Only top-level members count.
 */
export function memberBytes(object: Buffer, name: string): Buffer | undefined {
  const key = Buffer.from(JSON.stringify(name));
  let at = 0;
  const skipSpace = () => { while (at < object.length && (object[at] === 0x20 || object[at] === 0x09 || object[at] === 0x0a || object[at] === 0x0d)) at += 1; };
  const endOfString = (from: number) => {
    let n = from + 1;
    while (n < object.length && object[n] !== 0x22) n += object[n] === 0x5c ? 2 : 1;
    return n + 1;
  };
  const endOfValue = (from: number) => {
    if (object[from] === 0x22) return endOfString(from);
    if (object[from] !== 0x7b && object[from] !== 0x5b) {
      let n = from;
      while (n < object.length && ![0x2c, 0x7d, 0x5d, 0x20, 0x09, 0x0a, 0x0d].includes(object[n]!)) n += 1;
      return n;
    }
    let depth = 0;
    for (let n = from; n < object.length;) {
      const byte = object[n]!;
      if (byte === 0x22) { n = endOfString(n); continue; }
      if (byte === 0x7b || byte === 0x5b) depth += 1;
      if (byte === 0x7d || byte === 0x5d) depth -= 1;
      n += 1;
      if (depth === 0) return n;
    }
    return object.length;
  };
  skipSpace();
  if (object[at] !== 0x7b) return undefined;
  at += 1;
  for (;;) {
    skipSpace();
    if (object[at] !== 0x22) return undefined;
    const keyEnd = endOfString(at);
    const found = object.subarray(at, keyEnd).equals(key);
    at = keyEnd;
    skipSpace();
    if (object[at] !== 0x3a) return undefined;
    at += 1;
    skipSpace();
    const valueEnd = endOfValue(at);
    if (found) return object.subarray(at, valueEnd);
    at = valueEnd;
    skipSpace();
    if (object[at] !== 0x2c) return undefined;
    at += 1;
  }
}

/** The real Microsoft Graph client stack (msal for the Graph audience over undici) against a stand-in's Graph, fast retries. */
export function connectGraph(emulator: Emulator, agent: ReturnType<typeof createHttpAgent>, options: { maxAttempts?: number; maxRetryAfterMs?: number; logger?: ReturnType<typeof createLogger> } = {}) {
  const graphTokens = new MsalTokenProvider({
    tenantId: emulator.tenantId, clientId: emulator.clientId, credential: { kind: 'secret', secret: emulator.clientSecret },
    authorityHost: emulator.authorityHost, apiRoot: emulator.graphRoot, dispatcher: agent,
  });
  const graph = new ServiceHealthClient({
    graphRoot: emulator.graphRoot, tokens: graphTokens, dispatcher: agent, now: () => emulator.now(),
    retry: { maxAttempts: options.maxAttempts ?? 6, baseDelayMs: 5, maxDelayMs: 50, ...(options.maxRetryAfterMs !== undefined ? { maxRetryAfterMs: options.maxRetryAfterMs } : {}) },
    ...(options.logger ? { logger: options.logger } : {}),
  });
  return { graph, graphTokens };
}
