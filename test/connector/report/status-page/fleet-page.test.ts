import { describe, expect, it } from 'vitest';
import { pageQueryOf, searchOf, tenantPage, tenantsPerPage } from '../../../../connector/report/status-page/fleet-page.ts';
import { fleetView } from './fleet-fixture.ts';

describe('status page: which tenants a page shows', () => {
  it('reads the filter from the query, leaving out what it cannot read', () => {
    expect(pageQueryOf(new URLSearchParams('q=%20Contoso%20&state=degraded&page=3'))).toEqual({ text: 'Contoso', state: 'Degraded', page: 3 });
    expect(pageQueryOf(new URLSearchParams('state=broken&page=-1'))).toEqual({ text: '', state: undefined, page: 1 });
    expect(searchOf({ text: 'a b', state: 'Active', page: 2 }, 3)).toBe('?q=a+b&state=Active&page=3');
    expect(searchOf({ text: '', state: undefined, page: 1 })).toBe('');
  });

  it('sorts worst first (Inactive, Degraded, Active, then the largest lag), filters by name, id and state, and pages', () => {
    const { report } = fleetView(250);
    const first = tenantPage(report.tenants, { text: '', state: undefined, page: 1 });
    const count = (state: string) => report.tenants.filter((t) => t.overall === state).length;
    expect(count('Inactive')).toBe(25);
    expect(first).toMatchObject({ matched: 250, page: 1, pages: 3, counts: { Inactive: 25, Degraded: count('Degraded'), Active: count('Active') } });
    expect(first.tenants).toHaveLength(tenantsPerPage);
    const states = first.tenants.map((t) => t.overall);
    expect(states.slice(0, 25).every((s) => s === 'Inactive')).toBe(true);
    expect(states.slice(25, 25 + count('Degraded')).every((s) => s === 'Degraded')).toBe(true);
    const actives = first.tenants.filter((t) => t.overall === 'Active').map((t) => Math.max(...t.contentTypes.map((r) => r.lagSeconds!)));
    expect(actives).toEqual(actives.toSorted((a, b) => b - a));
    expect(tenantPage(report.tenants, { text: '', state: undefined, page: 9 }).page).toBe(3);

    expect(tenantPage(report.tenants, { text: 'TENANT-42.example', state: undefined, page: 1 }).tenants.map((t) => t.domain)).toEqual(['tenant-42.example.com']);
    expect(tenantPage(report.tenants, { text: report.tenants[7]!.tenant.slice(0, 8), state: undefined, page: 1 }).tenants.map((t) => t.tenant)).toEqual([report.tenants[7]!.tenant]);
    const inactive = tenantPage(report.tenants, { text: '', state: 'Inactive', page: 1 });
    expect(inactive.matched).toBe(25);
    expect(inactive.tenants.every((t) => t.overall === 'Inactive')).toBe(true);
  });
});
