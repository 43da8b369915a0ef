/**
 * Runs without a client secret, end to end through the CLI: a federated token file that Azure Workload Identity
 * rewrites mid-backfill while the token in it (and every access token) expires, and a managed identity of the host.
 * Nothing may be lost or repeated: the sink is compared with the stand-in's ground truth, byte for byte.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startEmulator } from '../emulator/index.ts';
import { contentTypes } from '../../contract/content-types.ts';
import { createTestIssuer } from '../emulator/federated-issuer.ts';
import { exitWithin, startConnector } from './processes.ts';
import { expectExactBytes, fileLines, workDir, writeOutputs } from './support.ts';

const hour = 3_600_000;
/** The stand-in's clock stands still (tests move it with advance): the newest blob is not still filling when the run ends. */
const frozen = new Date(Math.floor(Date.now() / 60_000) * 60_000);
const subject = 'system:serviceaccount:soc:o365-connector';
const emulators: Array<{ stop(): Promise<void> }> = [];
afterAll(async () => { await Promise.all(emulators.map((emulator) => emulator.stop())); });

/** What a stack with credential federated or managedIdentity exports: no secret, no expiry. */
const withoutSecret = { clientSecret: undefined, clientSecretExpiry: undefined };

describe('a run without a secret', () => {
  it('reads a federated token file rewritten mid-backfill while the old token expires, and delivers every record once', async () => {
    // The 40th blob fetch (of 100) is answered late: the backfill is still running when the token is rewritten. The
    // content is fixed (no blob appears when the clock moves below): 20 blobs per content type over the last two days.
    const emulator = await startEmulator({ now: () => frozen, seed: 27, quiet: true, recordsPerBlob: 40, faults: { latencyMs: 5, schedule: [{ fault: 'latency', from: 40, to: 40, routes: ['audit'] }], scheduledLatencyMs: 1500 } });
    for (const contentType of contentTypes) {
      for (let n = 1; n <= 20; n += 1) emulator.addContent(contentType, { contentCreated: new Date(frozen.getTime() - n * 2.4 * hour), visibleAt: new Date(frozen.getTime() - n * 2.4 * hour) });
    }
    emulators.push(emulator);
    const issuer = createTestIssuer('https://oidc.prod-aks.example/6f1c');
    emulator.trustIssuer(issuer.issuer, issuer.publicKey);
    emulator.addFederatedCredential({ issuer: issuer.issuer, subject });
    const dir = await workDir();
    const tokenFile = join(dir, 'azure-identity-token');
    /** As the kubelet rewrites a projected token: a new file renamed over the old one. */
    const writeToken = async (notBefore: Date, lifetimeMs: number) => {
      await writeFile(`${tokenFile}.new`, issuer.token({ subject, notBefore, expires: new Date(notBefore.getTime() + lifetimeMs) }));
      await rename(`${tokenFile}.new`, tokenFile);
    };
    await writeToken(emulator.now(), hour);
    const outputs = await writeOutputs(emulator, dir, { ...withoutSecret, credential: 'federated' });
    const sink = join(dir, 'audit.ndjson');

    const run = startConnector(['run', '--once', '--since', '3d', '--outputs', outputs, '--state', join(dir, 'state'), '--sink', `file:${sink}`, '--max-in-flight', '2', '--fetch-concurrency', '2'],
      { env: { AZURE_FEDERATED_TOKEN_FILE: tokenFile, NODE_EXTRA_CA_CERTS: emulator.caFile } });
    // Mid-backfill: the 40th blob fetch is being answered, and more are to come.
    await expect.poll(() => emulator.counters().byRoute['audit'] ?? 0, { timeout: 60_000, interval: 20 }).toBeGreaterThanOrEqual(40);
    const truth = emulator.groundTruthBytes();
    expect(emulator.counters().blobsServed).toBeLessThan(emulator.groundTruthCount().blobs);
    // The agent writes the next token before the old one expires; then 65 minutes pass: the old federated token and
    // every access token issued with it are expired, and each further call needs a token from the new file.
    await writeToken(emulator.now(), 3 * hour);
    emulator.advance(65 * 60_000);

    expect(await exitWithin(run, 120_000), run.stderr().slice(-2000)).toBe(0);
    expect(emulator.groundTruthBytes().size).toBe(truth.size);
    expectExactBytes(await fileLines(sink), truth);
    const counters = emulator.counters();
    // Access tokens expired mid-run were refused, and new ones came from the rewritten file: never one from the old token.
    expect(counters.unauthorized).toBeGreaterThan(0);
    expect(counters.tokensIssued).toBeGreaterThanOrEqual(2);
    expect(counters.tokenFailures).toBe(0);
    expect(run.stderr()).toContain('no client secret: secret-expiry warnings and the o365_client_secret_expiry_timestamp_seconds metric do not apply to this credential');
  });

  it('collects with the managed identity of the host, without an app credential, and delivers every record once', async () => {
    const emulator = await startEmulator({ now: () => frozen, seed: 28, days: 1, blobIntervalMinutes: 60, recordsPerBlob: 10 });
    emulators.push(emulator);
    const identity = await emulator.serveManagedIdentity({ clientId: '5b0e4c1a-7f3d-4e2b-9a6c-1d8f2e3a4b5c' });
    const dir = await workDir();
    const outputs = await writeOutputs(emulator, dir, { ...withoutSecret, credential: 'managedIdentity', clientId: identity.clientId });
    const sink = join(dir, 'audit.ndjson');
    const run = startConnector(['run', '--once', '--since', '2d', '--outputs', outputs, '--state', join(dir, 'state'), '--sink', `file:${sink}`],
      { env: { IDENTITY_ENDPOINT: identity.identityEndpoint, IDENTITY_HEADER: identity.identityHeader, NODE_EXTRA_CA_CERTS: emulator.caFile } });
    expect(await exitWithin(run, 120_000), run.stderr().slice(-2000)).toBe(0);
    expectExactBytes(await fileLines(sink), emulator.groundTruthBytes());
    expect(identity.tokensIssued()).toBeGreaterThan(0);
    // No app registration signed in: the identity platform's token endpoint was never asked.
    expect(emulator.counters().byRoute['token'] ?? 0).toBe(0);
  });
});
