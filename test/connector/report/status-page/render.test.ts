import { describe, expect, it } from 'vitest';
import { renderFleetPage, renderTenantPage } from '../../../../connector/report/status-page/render.ts';
import { registerSecret } from '../../../../connector/observe/secret-values.ts';
import { fleetView } from './fleet-fixture.ts';

const everyTenant = { text: '', state: undefined, page: 1 } as const;

describe('status page: rendering', () => {
  it('draws the grid of tenants × content types coloured by state, with lag, records, the error and its fix, secret expiry, throttling and workers', () => {
    const view = fleetView(12);
    const page = renderFleetPage(view, everyTenant);
    expect(page).toMatch(/^<!doctype html>/);
    expect(page).toContain('<meta http-equiv="refresh" content="30">');
    const rows = [...page.matchAll(/<tr data-tenant="([^"]+)" data-state="(\w+)">/g)].map((m) => m[2]);
    expect(rows).toEqual(['Inactive', 'Degraded', ...Array(10).fill('Active')]);
    expect(page).toContain('<th>Audit.AzureActiveDirectory</th>');
    expect(page).toMatch(/<td class="Inactive" data-state="Inactive"[^>]*>\n<b>Inactive<\/b> lag - · 123,456 rec/);
    expect(page).toContain('<br><i>Fix: turn on auditing in the Microsoft Purview compliance portal');
    expect(page).toMatch(/secret expires in 3 d \(2026-12-04\)/);
    expect(page).toContain('<li class="urgent">secret expires in 3 d');
    expect(page).toMatch(/throttled earlier: 3 AF429, 1,900\/min/);
    expect(page).toContain('<li>workers: w1, w2</li>');
    expect(page).toContain('<svg class="spark"');
    expect(page).not.toContain('class="problems"');
    view.report.unusableTenantFiles = [{ file: '/etc/o365/tenants/fabrikam.json', problem: 'CONFIG_INVALID: tenantId: missing.' }];
    expect(renderFleetPage(view, everyTenant)).toContain('<ul class="problems"><li>/etc/o365/tenants/fabrikam.json: CONFIG_INVALID: tenantId: missing. (not collected)</li></ul>');
    // No script, no external asset of any kind.
    expect(page).not.toMatch(/<script|<link|src=|url\(|@import/i);
  });

  it('escapes what comes from files and from Microsoft, and never shows a secret value', () => {
    const view = fleetView(2);
    const secret = 'Q~s3cr3t-value-of-the-client.0123456789';
    registerSecret(secret);
    view.report.tenants[0]!.domain = '<script>alert(1)</script>.example.com';
    view.report.tenants[0]!.contentTypes[0]!.lastError = { code: 'AADSTS7000215', message: `AADSTS7000215: Invalid client secret provided: "${secret}". Fix: rotate it`, at: '2026-12-01T11:00:00Z' };
    for (const page of [renderFleetPage(view, everyTenant), renderTenantPage(view, view.report.tenants[0]!.tenant)!]) {
      expect(page).not.toContain('<script>');
      expect(page).toContain('&lt;script&gt;alert(1)&lt;/script&gt;.example.com');
      expect(page).not.toContain(secret);
      expect(page).toContain('Invalid client secret provided: &quot;[redacted]&quot;.');
    }
  });

  it('shows one tenant\'s units in full on its own page, with the lag chart of every sample', () => {
    const view = fleetView(20, { fullHistory: true });
    const tenant = view.report.tenants[3]!;
    const page = renderTenantPage(view, tenant.tenant.toUpperCase())!;
    expect(page).toContain('<h1>tenant-3.example.com <span class="badge Inactive">Inactive</span></h1>');
    expect([...page.matchAll(/<section class="unit (\w+)" data-content-type="([^"]+)"/g)]).toHaveLength(tenant.contentTypes.length);
    const active = renderTenantPage(view, view.report.tenants[0]!.tenant)!;
    const points = /<svg class="spark" width="480"[^]*?<polyline points="([^"]+)"/.exec(active)![1]!.split(' ');
    expect(points).toHaveLength(180);
    expect(active).toContain('aria-label="lag over the last 6.0 h"');
    expect(renderTenantPage(view, 'no-such-tenant')).toBeUndefined();
  });

  it('a page of a 2,000-tenant fleet with six hours of lag history is under 1 MB (render time reported)', () => {
    const view = fleetView(2000, { fullHistory: true });
    const timings: number[] = [];
    let page = '';
    for (let i = 0; i < 5; i += 1) {
      const started = performance.now();
      page = renderFleetPage(view, everyTenant);
      timings.push(performance.now() - started);
    }
    const filtered = performance.now();
    const degraded = renderFleetPage(view, { text: '', state: 'Degraded', page: 2 });
    const filterMs = performance.now() - filtered;
    const bytes = Buffer.byteLength(page);
    expect(bytes).toBeLessThan(1_000_000);
    expect([...page.matchAll(/<tr data-tenant=/g)]).toHaveLength(100);
    expect(degraded).toContain('page 2 of 3');
    console.info(`status page, 2,000 tenants × 6 content types, 180 lag samples each: ${bytes.toLocaleString('en-US')} bytes a page; render ${timings.map((ms) => ms.toFixed(0)).join(', ')} ms (first to fifth), filtered page ${filterMs.toFixed(0)} ms`);
  });
});
