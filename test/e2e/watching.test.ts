/**
 * Watching a running fleet: its status page in a real headless Chromium (Debian's, driven by playwright-core), and
 * the metrics that deploy/'s alert rules and Grafana dashboard name, read from the same running connector.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { contentTypes } from '../../contract/content-types.ts';
import { startEmulator, type EmulatorTenant } from '../emulator/index.ts';
import { dashboardQueries, metricNames, ruleExpressions } from '../deploy/promtool.ts';
import { exitWithin, httpGet, killConnector, startConnector, type ConnectorProcess } from './processes.ts';
import { workDir } from './support.ts';

const frozen = new Date(Math.floor(Date.now() / 60_000) * 60_000);
const emulator = await startEmulator({ now: () => frozen, quotaPerMinute: 1_000_000, seed: 29, days: 0.5, blobIntervalMinutes: 60, recordsPerBlob: 10, enabledContentTypes: [...contentTypes] });
const token = 'page-token-7d1f0c9b2e8a4f63';
const browserPath = '/usr/bin/chromium';
const browserMissing = spawnSync(browserPath, ['--version']).error ? `${browserPath} is not installed (Debian's chromium; scripts/setup-test-deps.sh installs it, as root with apt)` : undefined;
/** Where the screenshots are kept (a test artefact: looked at, never compared pixel by pixel). */
const artefacts = process.env['O365_TEST_ARTIFACTS'] ?? join(tmpdir(), 'o365-connector-artifacts');

let connector: ConnectorProcess;
let address: string;
let healthy: EmulatorTenant[];
let failing: EmulatorTenant;
const authorization = `Bearer ${token}`;

/** GET with the token. */
async function get(path: string): Promise<{ status: number; text: string }> {
  const answer = await fetch(`http://${address}${path}`, { headers: { authorization } });
  return { status: answer.status, text: await answer.text() };
}

/** The page's rows: tenant id → state. */
const rowsOf = (page: string) => new Map([...page.matchAll(/<tr data-tenant="([^"]+)" data-state="(\w+)">/g)].map((m) => [m[1]!, m[2]!]));

beforeAll(async () => {
  const dir = await workDir();
  healthy = [emulator, emulator.addTenant({ days: 0.5 }), emulator.addTenant({ days: 0.5 })];
  // A tenant whose administrator turned auditing off: every pass of it fails.
  failing = emulator.addTenant({ days: 0.5, auditingEnabled: false });
  await mkdir(join(dir, 'tenants'));
  for (const tenant of [...healthy, failing]) await tenant.writeStackOutputs(join(dir, 'tenants', `${tenant.tenantDomain}.json`));
  // One secret close to its expiry, so the page has something to warn about.
  await writeFile(join(dir, 'tenants', `${healthy[2]!.tenantDomain}.json`), JSON.stringify({ ...healthy[2]!.stackOutputs(), clientSecretExpiry: new Date(Date.now() + 5 * 86_400_000).toISOString() }), { mode: 0o600 });
  connector = startConnector(['run', '--tenants', join(dir, 'tenants'), '--state', join(dir, 'state'), '--sink', `file:${join(dir, 'audit.ndjson')}`, '--since', '1d',
    '--requests-per-minute', '100000', '--poll-interval', '1', '--worker-name', 'page-worker', '--listen', '127.0.0.1:0', '--listen-token-env', 'O365_PAGE_TOKEN'], { env: { O365_PAGE_TOKEN: token } });
  address = await vi.waitFor(() => {
    const bound = /"component":"health","address":"([^"]+)"/.exec(connector.stderr())?.[1];
    if (!bound) throw new Error(`the connector serves nothing yet: ${connector.stderr().slice(-2000)}`);
    return bound;
  }, { timeout: 30_000, interval: 100 });
  // The page shows each tenant's state once every unit has had its first pass.
  const expected = new Map([...healthy.map((t) => [t.tenantId, 'Active'] as const), [failing.tenantId, 'Inactive'] as const]);
  await vi.waitFor(async () => expect(Object.fromEntries(rowsOf((await get('/')).text))).toEqual(Object.fromEntries(expected)), { timeout: 90_000, interval: 500 });
}, 120_000);

afterAll(async () => {
  if (connector) {
    connector.child.kill('SIGTERM');
    const timer = setTimeout(() => killConnector(connector), 20_000);
    await connector.done;
    clearTimeout(timer);
  }
  await emulator.stop();
});

describe('--listen-token-env mistakes', () => {
  it.each([
    ['names an unset variable', ['--listen', '127.0.0.1:0', '--listen-token-env', 'O365_NO_SUCH_TOKEN'], 'error: CONFIG_INVALID: --listen-token-env: the variable O365_NO_SUCH_TOKEN is unset or empty. Fix: set O365_NO_SUCH_TOKEN to a long random token (e.g. openssl rand -hex 32), or drop --listen-token-env'],
    ['has no --listen', ['--listen-token-env', 'O365_PAGE_TOKEN'], 'error: CONFIG_INVALID: --listen-token-env: has no --listen server to protect. Fix: give --listen <host:port> (or O365_LISTEN) as well, or drop --listen-token-env'],
  ])('%s: exit 2, one line', async (_what, args, line) => {
    const run = startConnector(['run', '--once', '--state', join(await workDir(), 'state'), ...args], { env: { O365_PAGE_TOKEN: token, O365_LISTEN: undefined, O365_LISTEN_TOKEN_ENV: undefined } });
    expect(await exitWithin(run, 30_000)).toBe(2);
    expect(run.stderr().trim()).toBe(line);
  });
});

describe('watching a running fleet of four tenants, one failing', () => {
  it('asks for the token on every path but /livez and /readyz', async () => {
    expect((await httpGet(address, '/livez')).status).toBe(200);
    expect((await httpGet(address, '/readyz')).status).not.toBe(401);
    for (const path of ['/', '/metrics', `/tenants/${failing.tenantId}`]) expect((await httpGet(address, path)).status).toBe(401);
  });

  it('exports every metric that the alert rules and the Grafana dashboard name', async () => {
    const exposition = await get('/metrics');
    expect(exposition.status).toBe(200);
    const declared = new Map([...exposition.text.matchAll(/^# TYPE (\S+) (\w+)$/gm)].map((m) => [m[1]!, m[2]!]));
    const named = new Set([...ruleExpressions(), ...dashboardQueries()].flatMap(metricNames));
    expect(named.size).toBeGreaterThan(12);
    // A histogram is declared by its name and read as its _bucket, _sum and _count series.
    const missing = [...named].filter((name) => !declared.has(name) && declared.get(name.replace(/_(bucket|sum|count)$/, '')) !== 'histogram');
    expect(missing, `named by deploy/ but not exported: ${missing.join(', ')}`).toEqual([]);
    expect(exposition.text).toMatch(/^o365_units_held\{worker="page-worker"\} 2[0-9]$/m);
    expect(exposition.text).toMatch(new RegExp(`^o365_collection_active\\{tenant="${failing.tenantId}",content_type="Audit.General"\\} 0$`, 'm'));
  });

  it.skipIf(browserMissing !== undefined)(`shows the states, filters, opens a tenant and is screenshotted in headless Chromium${browserMissing ? ` (skipped: ${browserMissing})` : ''}`, { timeout: 120_000 }, async () => {
    const browser: Browser = await chromium.launch({ executablePath: browserPath, args: ['--no-sandbox'] });
    try {
      // Without the token the browser is asked for it (Basic), and has none to give.
      const anonymous = await browser.newPage();
      await expect(anonymous.goto(`http://${address}/`)).rejects.toThrow(/ERR_INVALID_AUTH_CREDENTIALS/);

      // A person types the token into the browser's login prompt (any user name).
      const context = await browser.newContext({ httpCredentials: { username: 'soc', password: token }, viewport: { width: 1500, height: 900 } });
      const page = await context.newPage();
      const requested: string[] = [];
      page.on('request', (request) => requested.push(request.url()));
      expect((await page.goto(`http://${address}/`))!.status()).toBe(200);
      expect(await page.title()).toBe('o365-connector: Degraded');

      // Worst first: the failing tenant leads, every one of its cells Inactive, with its error and the fix.
      const rows = await page.locator('tr[data-tenant]').evaluateAll((trs) => trs.map((tr) => [tr.getAttribute('data-tenant'), tr.getAttribute('data-state')]));
      expect(rows[0]).toEqual([failing.tenantId, 'Inactive']);
      expect(rows.slice(1).map(([, state]) => state)).toEqual(['Active', 'Active', 'Active']);
      const failingRow = page.locator(`tr[data-tenant="${failing.tenantId}"]`);
      const cellStates = await failingRow.locator('td[data-state]').evaluateAll((tds) => tds.map((td) => td.getAttribute('data-state')));
      expect(cellStates.length).toBeGreaterThan(1);
      expect(new Set(cellStates)).toEqual(new Set(['Inactive']));
      expect(await failingRow.locator('p.error').first().innerText()).toMatch(/^AUDIT_LOG_DISABLED: [^]*\nFix: /);
      expect(await page.locator(`tr[data-tenant="${healthy[2]!.tenantId}"] li.urgent`).innerText()).toMatch(/^secret expires in 4 d /);
      expect(await page.locator(`tr[data-tenant="${healthy[0]!.tenantId}"] ul.facts`).innerText()).toContain('worker: page-worker');
      // Each unit's lag chart: the healthy ones have their lag drawn, the failing ones have none yet.
      expect(await page.locator(`tr[data-tenant="${healthy[0]!.tenantId}"] svg.spark polyline`).count()).toBe(5);
      expect(await failingRow.locator('svg.spark').first().textContent()).toBe('no lag yet');
      await mkdir(artefacts, { recursive: true });
      await page.screenshot({ path: join(artefacts, 'status-page.png'), fullPage: true });

      // The filter: by part of a domain, any case; then by state.
      await page.fill('input[name=q]', healthy[1]!.tenantDomain.toUpperCase().slice(0, -2));
      await Promise.all([page.waitForURL(/\?q=/), page.click('button[type=submit]')]);
      expect(await page.locator('tr[data-tenant]').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-tenant')))).toEqual([healthy[1]!.tenantId]);
      await page.goto(`http://${address}/`);
      await page.selectOption('select[name=state]', 'Inactive');
      await Promise.all([page.waitForURL(/state=Inactive/), page.click('button[type=submit]')]);
      expect(await page.locator('tr[data-tenant]').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-tenant')))).toEqual([failing.tenantId]);

      // One tenant's page, from its link.
      await Promise.all([page.waitForURL(/\/tenants\//), page.click(`tr[data-tenant="${failing.tenantId}"] th a`)]);
      expect(await page.locator('h1').innerText()).toBe(`${failing.tenantDomain} Inactive`);
      expect(await page.locator('section.unit[data-state="Inactive"]').count()).toBe(await page.locator('section.unit').count());
      await page.screenshot({ path: join(artefacts, 'status-page-tenant.png'), fullPage: true });

      // Nothing was loaded from anywhere but the connector, and no secret was on any page.
      expect(requested.filter((url) => !url.startsWith(`http://${address}/`))).toEqual([]);
      for (const path of ['/', `/tenants/${failing.tenantId}`, `/tenants/${healthy[0]!.tenantId}`]) {
        await page.goto(`http://${address}${path}`);
        const html = await page.content();
        for (const secret of [token, ...[...healthy, failing].map((tenant) => tenant.clientSecret)]) expect(html).not.toContain(secret);
      }
      console.info(`status page screenshots: ${join(artefacts, 'status-page.png')}, ${join(artefacts, 'status-page-tenant.png')}`);
    } finally {
      await browser.close();
    }
  });
});
