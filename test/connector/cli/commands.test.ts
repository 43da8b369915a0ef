import { afterAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { openStateStore } from '../state/open-store.ts';
import { join, resolve } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { startEmulator } from '../../emulator/index.ts';
import { connectorOutputs } from '../../emulator/connector-config.ts';
import { workDir } from '../../e2e/support.ts';

const root = resolve(import.meta.dirname, '../../..');
const emulator = await startEmulator({ seed: 21, days: 1 });
const dir = await workDir();
afterAll(() => emulator.stop());

interface Result { code: number; stdout: string; stderr: string }

function cli(args: string[], options: { env?: Record<string, string | undefined>; outputs?: Record<string, unknown> | null } = {}): Promise<Result> {
  return (async () => {
    const file = join(dir, `outputs-${Math.random().toString(36).slice(2)}.json`);
    if (options.outputs !== null) await writeFile(file, JSON.stringify({ ...connectorOutputs(emulator), caFile: undefined, ...options.outputs }), { mode: 0o600 });
    const env: Record<string, string | undefined> = { ...process.env, NODE_EXTRA_CA_CERTS: emulator.caFile, O365_OUTPUTS_FILE: options.outputs === null ? undefined : file, O365_LOG_LEVEL: 'warn', ...options.env };
    for (const key of Object.keys(env)) if (env[key] === undefined) delete env[key];
    return new Promise<Result>((resolvePromise) => {
      execFile(process.execPath, [join(root, 'connector/bin.mjs'), ...args], { cwd: dir, env: env as NodeJS.ProcessEnv }, (error, stdout, stderr) => {
        resolvePromise({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
      });
    });
  })();
}

function expectNoSecret(result: Result, ...secrets: string[]) {
  for (const secret of [emulator.clientSecret, ...secrets]) {
    expect(result.stdout).not.toContain(secret);
    expect(result.stderr).not.toContain(secret);
  }
}

function expectOneLineNoStack(result: Result) {
  const lines = result.stderr.split('\n').filter((line) => line.startsWith('error:') || line.startsWith('internal error:'));
  expect(lines).toHaveLength(1);
  expect(result.stderr).not.toMatch(/\n\s+at /);
}

describe('o365-connector test', () => {
  it('prints Connection successful with an ISO timestamp and exits 0', async () => {
    const result = await cli(['test']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Connection successful \d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z /);
    expectNoSecret(result);
  });

  it.each([
    ['a wrong secret (the secret id pasted instead of its value)', { outputs: { clientSecret: 'b7c1d2e3-f4a5-4b6c-8d7e-9f0a1b2c3d4e' } }, 3, /^error: AADSTS7000215: the client secret is invalid: often the secret ID was pasted instead of its value\. Fix: use the secret value: re-run `pulumi stack output --json --show-secrets` and take clientSecret$/m],
    ['an unknown tenant', { outputs: { tenantId: '11111111-2222-4333-8444-555555555555' } }, 3, /^error: AADSTS90002: the tenant was not found in this cloud\. Fix: set tenantId from `pulumi stack output tenantId`/m],
    ['an unknown client id', { outputs: { clientId: '11111111-2222-4333-8444-666666666666' } }, 3, /^error: AADSTS700016: the application \(client id\) was not found in this tenant\. Fix: set clientId/m],
    ['an API root the tenant does not know', { env: { O365_API_ROOT: `https://localhost:${emulator.port}` } }, 3, /^error: AADSTS500011: the Office 365 Management APIs resource was not found in the tenant: wrong cloud or apiRoot\. Fix: set cloud/m],
    ['a tenant id that is not a GUID', { outputs: { tenantId: 'contoso.onmicrosoft.com' } }, 2, /^error: CONFIG_INVALID: tenantId: must be a GUID, the directory \(tenant\) id, not the domain name \(got "contoso.onmicrosoft.com"\) Fix: use `pulumi stack output tenantId`$/m],
    ['an unknown cloud', { outputs: { cloud: 'azure-germany' } }, 2, /^error: CONFIG_INVALID: cloud: unknown cloud "azure-germany"\. Fix: use one of commercial, gcc, gcchigh, dod, china$/m],
    ['an http endpoint', { env: { O365_API_ROOT: `http://127.0.0.1:${emulator.port}` } }, 2, /^error: CONFIG_INVALID: apiRoot: must be https/m],
    ['no configuration at all', { outputs: null, env: { O365_OUTPUTS_FILE: undefined } }, 2, /^error: CONFIG_INVALID: tenantId: missing\. Fix: pass --outputs <file>/m],
    ['an untrusted certificate', { env: { NODE_EXTRA_CA_CERTS: undefined } }, 5, /^error: UNABLE_TO_VERIFY_LEAF_SIGNATURE: the TLS certificate of 127\.0\.0\.1:\d+ is not trusted: unable to verify the first certificate\. Fix: add the CA that issued it with NODE_EXTRA_CA_CERTS=<pem file> or caFile/m],
    ['an unreachable host', { env: { O365_AUTHORITY_HOST: 'https://127.0.0.1:9', O365_API_ROOT: 'https://127.0.0.1:9' } }, 5, /^error: ECONNREFUSED: cannot reach 127\.0\.0\.1:9: connect ECONNREFUSED 127\.0\.0\.1:9\. Fix: check network access/m],
  ] as const)('explains %s in one line with the code and the fix', async (_name, options, exitCode, message) => {
    const result = await cli(['test'], options as never);
    expect(result.stderr).toMatch(message);
    expect(result.code).toBe(exitCode);
    expectOneLineNoStack(result);
    expectNoSecret(result, 'b7c1d2e3-f4a5-4b6c-8d7e-9f0a1b2c3d4e');
  });

  it('says to turn on audit log search when the tenant answers "Tenant does not exist"', async () => {
    emulator.setAuditingEnabled(false);
    try {
      const result = await cli(['test']);
      expect(result.code).toBe(4);
      expect(result.stderr).toMatch(/^error: AUDIT_LOG_DISABLED: unified audit logging is not turned on for this tenant: the service says "Tenant <id> does not exist"\. Fix: turn on audit log search: Microsoft Purview compliance portal > Audit/m);
      expectOneLineNoStack(result);
    } finally {
      emulator.setAuditingEnabled(true);
    }
  });

  it('reports the Microsoft Graph permissions for service health as granted', async () => {
    const result = await cli(['test'], { outputs: { contentTypes: ['Audit.Exchange', 'ServiceHealth'] } });
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^Microsoft Graph \\(127\\.0\\.0\\.1:${emulator.port}\\): ServiceHealth\\.Read\\.All granted, ServiceMessage\\.Read\\.All granted; service health is collected$`, 'm'));
  });

  it('names a missing Graph permission in one line with its fix, and fails when ServiceHealth is collected', async () => {
    emulator.setGraphRoles(['ServiceHealth.Read.All']);
    try {
      const result = await cli(['test'], { outputs: { contentTypes: ['Audit.Exchange', 'ServiceHealth'] } });
      expect(result.code).toBe(4);
      expect(result.stdout).toMatch(/^Microsoft Graph \(.*\): ServiceHealth\.Read\.All granted; service health is collected$/m);
      expect(result.stderr).toMatch(/^error: GRAPH_FORBIDDEN: Microsoft Graph refused serviceAnnouncement\/messages: the app lacks ServiceMessage\.Read\.All .*Fix: grant the app the Microsoft Graph application permission ServiceMessage\.Read\.All with admin consent/m);
      expectOneLineNoStack(result);
      // Not collected: the same line as a warning, and `test` passes.
      const quiet = await cli(['test']);
      expect(quiet.code).toBe(0);
      expect(quiet.stderr).toMatch(/^warning: GRAPH_FORBIDDEN: .*ServiceMessage\.Read\.All/m);
      expect(quiet.stdout).toMatch(/service health is not collected \(add ServiceHealth to --content-types\)$/m);
    } finally {
      emulator.setGraphRoles(['ServiceHealth.Read.All', 'ServiceMessage.Read.All']);
    }
  });

  it('names AF10001 and admin consent when the token lacks the permission', async () => {
    emulator.setGrantedRoles([]);
    try {
      const result = await cli(['test']);
      expect(result.code).toBe(4);
      expect(result.stderr).toMatch(/^error: AF10001: the token lacks the permission for this call: admin consent is missing or the permission was removed\. Fix: grant admin consent/m);
      expectOneLineNoStack(result);
    } finally {
      emulator.setGrantedRoles(['ActivityFeed.Read', 'ActivityFeed.ReadDlp', 'ServiceHealth.Read']);
    }
  });

  it('re-reads the outputs file once when the secret expired after a rotation, without a restart', async () => {
    const rotating = await startEmulator({ seed: 22, days: 1 });
    try {
      const { MsalTokenProvider } = await import('../../../connector/auth/token-provider.ts');
      const { createHttpAgent } = await import('../../../connector/http/http-agent.ts');
      const { loadConfig } = await import('../../../connector/config/config.ts');
      const file = join(dir, 'rotating.json');
      await writeFile(file, JSON.stringify(connectorOutputs(rotating)), { mode: 0o600 });
      const { config, reloadCredential } = await loadConfig({ outputs: file }, {});
      const agent = createHttpAgent({ caFile: rotating.caFile });
      const tokens = new MsalTokenProvider({ tenantId: config.tenantId, clientId: config.clientId, credential: config.credential, authorityHost: config.authorityHost, apiRoot: config.apiRoot, dispatcher: agent, reloadCredential });
      await tokens.getToken();
      // `pulumi up` rotated the secret and the old one expired; the outputs file was refreshed.
      const rotated = rotating.rotateSecret({ expireOld: true });
      await writeFile(file, JSON.stringify({ ...connectorOutputs(rotating), clientSecret: rotated }));
      tokens.invalidate();
      await expect(tokens.getToken()).resolves.toMatch(/\./);
      expect(rotating.counters().tokenFailures).toBe(1);
      await agent.close();
    } finally {
      await rotating.stop();
    }
  });
});

describe('o365-connector commands', () => {
  it('starts subscriptions idempotently and lists them', async () => {
    const first = await cli(['subscriptions', 'start', '--content-types', 'Audit.General,Audit.Exchange']);
    const second = await cli(['subscriptions', 'start', '--content-types', 'Audit.General,Audit.Exchange']);
    expect([first.code, second.code]).toEqual([0, 0]);
    expect(second.stdout).toMatch(/Audit\.General\s+enabled/);
    const list = await cli(['subscriptions', 'list']);
    expect(list.stdout).toMatch(/Audit\.Exchange\s+enabled/);
    expect(list.stdout).toMatch(/DLP\.All\s+not started/);
  });

  it('runs once to stdout with NDJSON on stdout and JSON logs only on stderr, then reports status', async () => {
    const state = join(dir, 'state-stdout');
    const run = await cli(['run', '--once', '--content-types', 'Audit.General', '--since', '6h', '--state', state, '--requests-per-minute', '100000'], { env: { O365_LOG_LEVEL: 'info' } });
    expect(run.code).toBe(0);
    const records = run.stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as { Id: string; Workload: string });
    expect(records.length).toBeGreaterThan(0);
    expect(records.every((r) => typeof r.Id === 'string')).toBe(true);
    for (const line of run.stderr.split('\n').filter(Boolean)) expect(JSON.parse(line)).toHaveProperty('level');
    expectNoSecret(run);
    // The outputs file is the one place meant to hold the secret: the state directory never does.
    const stateFiles = await readdir(state);
    expect(stateFiles.length).toBeGreaterThan(0);
    for (const name of stateFiles) expect(await readFile(join(state, name), 'utf8'), name).not.toContain(emulator.clientSecret);
    const status = await cli(['status', '--state', state, '--json']);
    expect(status.code).toBe(0);
    const report = JSON.parse(status.stdout);
    expect(report.overall).toBe('Active');
    expect(report.contentTypes.find((r: { contentType: string }) => r.contentType === 'Audit.General').recordsDelivered).toBe(records.length);
  });

  it('takes its sinks from O365_SINKS when no --sink is given', async () => {
    const state = join(dir, 'state-env-sinks');
    const file = join(dir, 'env-sinks.ndjson');
    const run = await cli(['run', '--once', '--content-types', 'Audit.General', '--since', '6h', '--state', state, '--requests-per-minute', '100000'], { env: { O365_SINKS: `\n  file:${file}\n` } });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toBe('');
    const lines = (await readFile(file, 'utf8')).split('\n').filter(Boolean);
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) expect(JSON.parse(line)).toHaveProperty('Id');
  });

  it('answers --help on every command, listing the global options', async () => {
    for (const args of [['--help'], ['test', '--help'], ['run', '--help'], ['status', '--help'], ['subscriptions', '--help'], ['subscriptions', 'start', '--help'], ['subscriptions', 'stop', '--help'], ['subscriptions', 'list', '--help']]) {
      const result = await cli(args);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/Usage: o365-connector/);
      expect(result.stderr).toBe('');
    }
    const top = await cli(['--help']);
    for (const option of ['--outputs', '--stack', '--log-level']) expect(top.stdout).toContain(option);
    expect(top.stdout).toMatch(/Exit codes: 0 ok/);
    const run = await cli(['run', '--help']);
    for (const option of ['--once', '--since', '--sink', '--state', '--content-types']) expect(run.stdout).toContain(option);
  });

  it('accepts the global options after the command name too', async () => {
    const file = join(dir, 'global-after.json');
    await writeFile(file, JSON.stringify({ ...connectorOutputs(emulator), caFile: undefined }), { mode: 0o600 });
    const result = await cli(['test', '--outputs', file, '--log-level', 'error'], { outputs: null });
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Connection successful /);
  });

  it('test names AF429 when the tenant stays throttled for longer than a person should wait (run would wait it out)', async () => {
    emulator.setFaults({ throttleRate: 1, throttleStatus: 403 });
    try {
      const result = await cli(['test']);
      expect(result.code).toBe(4);
      expect(result.stderr).toMatch(/^error: AF429: the tenant is throttled: too many requests for this publisher identifier\. Fix: none needed: the connector slows to the rate the service takes/m);
      expectOneLineNoStack(result);
    } finally {
      emulator.setFaults({});
    }
  });

  it('stops subscriptions idempotently', async () => {
    const first = await cli(['subscriptions', 'stop', '--content-types', 'DLP.All']);
    const second = await cli(['subscriptions', 'stop', '--content-types', 'DLP.All']);
    expect([first.code, second.code]).toEqual([0, 0]);
    expect(second.stdout).toMatch(/DLP\.All\s+disabled/);
  });

  it('reports status from the state directory alone when offline or unconfigured', async () => {
    // An empty directory (one that does not exist is a mistyped --state: exit 2).
    await mkdir(join(dir, 'never-ran'), { recursive: true });
    const result = await cli(['status', '--state', join(dir, 'never-ran'), '--json'], { outputs: null, env: { O365_OUTPUTS_FILE: undefined } });
    expect(result.code).toBe(11);
    expect(JSON.parse(result.stdout)).toMatchObject({ overall: 'Inactive' });
    for (const line of result.stderr.split('\n').filter(Boolean)) expect(JSON.parse(line)).toMatchObject({ level: 'warn' });
  });

  it('picks up a secret rotated in the outputs file mid-run, without a restart, and stops gracefully on SIGTERM', async () => {
    const rotating = await startEmulator({ seed: 23, days: 1 });
    try {
      const file = join(dir, 'mid-run.json');
      await writeFile(file, JSON.stringify(connectorOutputs(rotating)), { mode: 0o600 });
      const state = join(dir, 'state-rotation');
      const child = spawn(process.execPath, [join(root, 'connector/bin.mjs'), 'run', '--content-types', 'Audit.General', '--since', '2h', '--state', state, '--poll-interval', '1', '--sink', `file:${join(dir, 'rotation.ndjson')}`], {
        cwd: dir, env: { ...process.env, O365_OUTPUTS_FILE: file, O365_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk: Buffer) => { stdout += chunk; });
      const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
      const logged = (pattern: RegExp) => new Promise<void>((r) => {
        const check = () => { if (pattern.test(stderr)) { child.stderr.off('data', onData); r(); } };
        const onData = (chunk: Buffer) => { stderr += chunk; check(); };
        child.stderr.on('data', onData);
        check();
      });
      // The first pass has fetched content with the original secret's token.
      await expect.poll(() => rotating.counters().byRoute['audit'] ?? 0, { timeout: 20_000, interval: 20 }).toBeGreaterThan(0);
      // `pulumi up` rotated the secret, the old one expired and its tokens were revoked; the outputs file was refreshed.
      const issued = rotating.counters().tokensIssued;
      const rotated = rotating.rotateSecret({ expireOld: true });
      await writeFile(file, JSON.stringify({ ...connectorOutputs(rotating), clientSecret: rotated }));
      rotating.revokeTokens();
      await logged(/credential rejected; trying the credential now in the configuration source/);
      await expect.poll(() => rotating.counters().tokensIssued, { timeout: 20_000, interval: 20 }).toBeGreaterThan(issued);
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(stderr).not.toMatch(/"level":"(error|fatal)"/);
      for (const secret of [rotating.clientSecret, rotated]) {
        expect(stderr).not.toContain(secret);
        expect(stdout).not.toContain(secret);
      }
    } finally {
      await rotating.stop();
    }
  }, 30_000);

  it('refuses a second connector on a state directory in use, after waiting --state-lock-wait, in one line', async () => {
    const state = join(dir, 'state-shared');
    const outputs = join(dir, 'outputs-shared.json');
    await writeFile(outputs, JSON.stringify(connectorOutputs(emulator)), { mode: 0o600 });
    const first = spawn(process.execPath, [join(root, 'connector/bin.mjs'), 'run', '--content-types', 'Audit.General', '--since', '1h', '--state', state, '--poll-interval', '60', '--sink', `file:${join(dir, 'shared.ndjson')}`], {
      cwd: dir, env: { ...process.env, NODE_EXTRA_CA_CERTS: emulator.caFile, O365_OUTPUTS_FILE: outputs, O365_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'pipe'],
    });
    const exited = new Promise<number | null>((r) => first.on('exit', (code) => r(code)));
    try {
      // The first connector holds the lock once its state database exists.
      await expect.poll(async () => (await readdir(state).catch(() => [] as string[])).includes('state.db'), { timeout: 20_000 }).toBe(true);
      const second = await cli(['run', '--once', '--state', state, '--state-lock-wait', '1', '--sink', `file:${join(dir, 'shared.ndjson')}`]);
      expect(second.code).toBe(2);
      expect(second.stderr).toMatch(/"msg":"the state directory is locked by another connector/);
      expect(second.stderr).toMatch(/^error: STATE_LOCKED: state directory \S+ is in use by another running connector\. Fix: stop that connector, or give this one its own --state directory$/m);
      expectOneLineNoStack(second);
    } finally {
      first.kill('SIGTERM');
      expect(await exited).toBe(0);
    }
  }, 30_000);

  it('rejects a malformed --since in one line naming the flag', async () => {
    const result = await cli(['run', '--once', '--since', 'last tuesday']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/CONFIG_INVALID: --since: "last tuesday" is neither an ISO time nor a duration/);
  });
});

describe('exit codes and lines for operator mistakes', () => {
  it.each([
    ['an unknown option', ['run', '--once', '--bogus'], {}, "error: CONFIG_INVALID: unknown option '--bogus'. Fix: see `o365-connector run --help`"],
    ['a mistyped option', ['status', '--jsn'], {}, "error: CONFIG_INVALID: unknown option '--jsn' (Did you mean --json?). Fix: see `o365-connector status --help`"],
    ['an option without its value', ['run', '--since'], {}, "error: CONFIG_INVALID: option '--since <time>' argument missing. Fix: see `o365-connector run --help`"],
    ['a bad O365_LOG_LEVEL', ['status', '--offline'], { O365_LOG_LEVEL: 'loud' }, "error: CONFIG_INVALID: option '--log-level <level>' value 'loud' from env 'O365_LOG_LEVEL' is invalid. Allowed choices are trace, debug, info, warn, error, fatal, silent. Fix: see `o365-connector status --help`"],
    ['a setting out of range', ['run', '--once', '--requests-per-minute', '0'], {}, 'error: CONFIG_INVALID: --requests-per-minute: 0 is outside 1 to 1000000. Fix: give a whole number from 1 to 1000000, or leave --requests-per-minute out for its default, 2000'],
    ['--state /', ['run', '--once', '--state', '/'], {}, "error: STATE_UNSAFE: --state / is a directory of the system itself, not one for the connector's state. Fix: give --state a new or empty directory of its own, e.g. /var/lib/o365"],
  ])('%s: exit 2, one line, no help dump', async (_what, args, env, line) => {
    const result = await cli(args, { env });
    expect(result.code).toBe(2);
    expect(result.stderr.trim()).toBe(line);
  });

  it('warns when --since reaches past the 7 days the API keeps, saying where the run starts', async () => {
    const state = join(dir, 'since-1970');
    // The history of those years is another test's (test/e2e/history.test.ts): none is read here.
    const result = await cli(['run', '--once', '--content-types', 'Audit.General', '--since', '1970-01-01', '--history-queries', '0', '--state', state, '--sink', `file:${join(dir, 'since-1970.ndjson')}`]);
    expect(result.code).toBe(0);
    const warning = result.stderr.split('\n').filter(Boolean).map((line) => JSON.parse(line) as Record<string, unknown>).find((entry) => String(entry['msg']).startsWith('--since is further back'));
    expect(warning).toMatchObject({ level: 'warn', since: '1970-01-01', msg: '--since is further back than the 7 days the API keeps content: a first run collects live from the oldest content it can list, and reads what is older from the audit search (history)' });
    expect(Date.now() - Date.parse(String(warning!['startsAt']))).toBeLessThan(7 * 24 * 3_600_000);
  });

  it('a --state that is a file: exit 2 naming it', async () => {
    const file = join(dir, 'not-a-directory');
    await writeFile(file, 'x');
    const result = await cli(['run', '--once', '--state', file]);
    expect(result.code).toBe(2);
    expect(result.stderr.trim()).toBe(`error: STATE_NOT_A_DIRECTORY: --state ${file} is a file, not a directory. Fix: give --state a new or empty directory of its own, e.g. /var/lib/o365`);
  });

  it('a checkpoint that is not a time: exit 2, STATE_CORRUPT naming the file, the content type and the way out', async () => {
    const state = join(dir, 'corrupt-checkpoint');
    expect((await cli(['run', '--once', '--content-types', 'Audit.General', '--since', '1h', '--state', state, '--sink', `file:${join(state, '..', 'corrupt.ndjson')}`])).code).toBe(0);
    const db = new DatabaseSync(join(state, 'state.db'));
    db.exec("UPDATE cursors SET checkpoint = 'the day before yesterday'");
    db.close();
    const result = await cli(['run', '--once', '--content-types', 'Audit.General', '--state', state, '--sink', `file:${join(state, '..', 'corrupt.ndjson')}`]);
    expect(result.code).toBe(2);
    expect(result.stderr.trim()).toMatch(new RegExp(`^error: STATE_CORRUPT: ${join(state, 'state.db')}: the checkpoint of [0-9a-f-]{36}/Audit\\.General, "the day before yesterday", is not a time\\. Fix: restore the state directory from a backup, or set it to an ISO time \\(sqlite3 `));
  });
});


describe('o365-connector run --tenants (fleet mode): refusals, one line each', () => {
  it('beside --outputs, a per-tenant variable, or an unreadable directory: exit 2 naming it', async () => {
    const tenants = join(dir, 'fleet-tenants');
    await mkdir(tenants, { recursive: true });
    const withOutputs = await cli(['run', '--once', '--tenants', tenants, '--state', join(dir, 'fleet-state-1')]);
    expect(withOutputs.code).toBe(2);
    expect(withOutputs.stderr.trim()).toMatch(/^error: CONFIG_INVALID: --tenants: cannot be combined with --outputs \(or O365_OUTPUTS_FILE\): each tenant's outputs file in the directory is its configuration\. Fix: drop one of them$/);
    expectOneLineNoStack(withOutputs);
    const withSecret = await cli(['run', '--once', '--tenants', tenants, '--state', join(dir, 'fleet-state-2')], { outputs: null, env: { O365_CLIENT_SECRET: 'not-for-a-fleet-0123456789' } });
    expect(withSecret.code).toBe(2);
    expect(withSecret.stderr.trim()).toMatch(/^error: CONFIG_INVALID: O365_CLIENT_SECRET: names one tenant, but --tenants collects many: each tenant's identity and credential come from its file\. Fix: unset O365_CLIENT_SECRET$/);
    expectNoSecret(withSecret, 'not-for-a-fleet-0123456789');
    const missing = await cli(['run', '--once', '--tenants', join(dir, 'no-such-dir'), '--state', join(dir, 'fleet-state-3')], { outputs: null });
    expect(missing.code).toBe(2);
    expect(missing.stderr.trim()).toMatch(/^error: CONFIG_INVALID: --tenants: cannot read the directory .*no-such-dir \(ENOENT\) Fix: give a directory holding one/);
    const empty = await cli(['run', '--once', '--tenants', tenants, '--state', join(dir, 'fleet-state-4')], { outputs: null });
    expect(empty.code).toBe(2);
    expect(empty.stderr.trim()).toMatch(/^error: CONFIG_INVALID: --tenants: .*fleet-tenants holds no usable outputs file\. Fix: write one `pulumi stack output --json --show-secrets` file per tenant into it$/);
  });

  it('a state directory of a single-tenant connector from before fleet mode: exit 2 with the way to adopt it', async () => {
    const tenants = join(dir, 'fleet-legacy-tenants');
    await mkdir(tenants, { recursive: true });
    await writeFile(join(tenants, 'contoso.json'), JSON.stringify({ ...connectorOutputs(emulator), caFile: undefined }), { mode: 0o600 });
    const state = join(dir, 'fleet-legacy-state');
    const legacy = await openStateStore(state, { lockWaitMs: 0 });
    await legacy.commit({ contentType: 'Audit.General', at: '2026-11-30T00:00:00.000Z', checkpoint: '2026-11-29T23:00:00.000Z' });
    await legacy.close();
    const result = await cli(['run', '--once', '--tenants', tenants, '--state', state], { outputs: null });
    expect(result.code).toBe(2);
    expect(result.stderr.trim()).toMatch(/^error: STATE_UNCLAIMED_TENANT: .*fleet-legacy-state holds the state of a single-tenant connector from before fleet mode, of a tenant it did not record\. Fix: run that tenant once on its own \(`run --once --outputs <its outputs file> --state .*fleet-legacy-state`\): its state becomes that tenant's, then start the fleet$/);
    expectOneLineNoStack(result);
  });

  it('a single-tenant run adopts such a state directory as before: it carries on from its checkpoint, and the fleet then starts on it', async () => {
    const state = join(dir, 'adopted-legacy-state');
    const checkpoint = new Date(Date.now() - 3_600_000).toISOString();
    const legacy = await openStateStore(state, { lockWaitMs: 0 });
    await legacy.commit({ contentType: 'Audit.General', at: checkpoint, checkpoint, coveredFrom: checkpoint });
    await legacy.close();
    const sink = `file:${join(dir, 'adopted-legacy.ndjson')}`;
    const single = await cli(['run', '--once', '--content-types', 'Audit.General', '--since', '1d', '--state', state, '--sink', sink]);
    expect(single.code, single.stderr).toBe(0);
    const db = new DatabaseSync(join(state, 'state.db'), { readOnly: true });
    const rows = db.prepare('SELECT tenant, checkpoint, covered_from FROM cursors').all() as Array<{ tenant: string; checkpoint: string; covered_from: string }>;
    db.close();
    expect(rows.map((row) => row.tenant)).toEqual([emulator.tenantId]);
    // Collection went on from the legacy checkpoint: the range it covers starts there, not a day back (--since).
    expect(Date.parse(rows[0]!.covered_from)).toBe(Date.parse(checkpoint));
    const tenants = join(dir, 'adopted-legacy-tenants');
    await mkdir(tenants, { recursive: true });
    await writeFile(join(tenants, 'contoso.json'), JSON.stringify({ ...connectorOutputs(emulator), caFile: undefined }), { mode: 0o600 });
    const fleet = await cli(['run', '--once', '--content-types', 'Audit.General', '--tenants', tenants, '--state', state, '--sink', sink], { outputs: null });
    expect(fleet.code, fleet.stderr).toBe(0);
  });
});

describe('o365-connector test --tenants (fleet mode)', () => {
  it('checks every tenant of the directory, one line each: ok, or the Microsoft code and the fix; an unusable file is one line naming it', async () => {
    const tenants = join(dir, 'test-tenants');
    await mkdir(tenants, { recursive: true });
    const other = emulator.addTenant({ quiet: true });
    try {
      await writeFile(join(tenants, 'good.json'), JSON.stringify({ ...connectorOutputs(emulator), caFile: undefined }), { mode: 0o600 });
      // The secret id pasted instead of its value, in the second tenant's file.
      await writeFile(join(tenants, 'wrong.json'), JSON.stringify({ ...connectorOutputs(other), caFile: undefined, clientSecret: 'b7c1d2e3-f4a5-4b6c-8d7e-9f0a1b2c3d4e' }), { mode: 0o600 });
      const result = await cli(['test', '--tenants', tenants], { outputs: null });
      expect(result.code).toBe(3);
      expect(result.stdout).toMatch(new RegExp(`^Tenant ${emulator.tenantId} ${emulator.tenantDomain.replaceAll('.', '\\.')}: ok \\(commercial, 127\\.0\\.0\\.1:\\d+; enabled subscriptions: `, 'm'));
      expect(result.stdout).toMatch(/^1 of 2 tenant\(s\) ok$/m);
      expect(result.stderr.trim()).toMatch(new RegExp(`^error: tenant ${other.tenantId} ${other.tenantDomain.replaceAll('.', '\\.')}: AADSTS7000215: the client secret is invalid`));
      expectNoSecret(result, other.clientSecret, 'b7c1d2e3-f4a5-4b6c-8d7e-9f0a1b2c3d4e');

      await writeFile(join(tenants, 'broken.json'), '{ not json', { mode: 0o600 });
      const withBroken = await cli(['test', '--tenants', tenants], { outputs: null });
      expect(withBroken.code).toBe(2);
      expect(withBroken.stderr).toMatch(/^error: .*broken\.json: CONFIG_INVALID: --tenants: .*broken\.json is not the JSON object/m);
      expect(withBroken.stdout).toMatch(/^1 of 2 tenant\(s\) ok; 1 file\(s\) unusable$/m);
    } finally {
      emulator.removeTenant(other.tenantId);
    }
  });
});
