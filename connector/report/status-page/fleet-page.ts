/**
 * Which tenants one page of the status page shows: those whose name or id holds the filter text and whose state is
 * the one asked, worst first (Inactive, Degraded, Active; then the largest lag), a fixed number a page, so that a
 * fleet of thousands is a few small pages.
 */
import type { FleetReport, Health } from '../status-report.ts';

export type FleetTenant = FleetReport['tenants'][number];

export const tenantsPerPage = 100;
export const healthStates: readonly Health[] = ['Inactive', 'Degraded', 'Active'];

export interface PageQuery {
  /** Part of a tenant's domain or id, any case; empty for every tenant. */
  readonly text: string;
  readonly state: Health | undefined;
  /** 1-based. */
  readonly page: number;
}

/** The query of `/?q=…&state=…&page=…`; what cannot be read is left out, never an error. */
export function pageQueryOf(search: URLSearchParams): PageQuery {
  const state = healthStates.find((health) => health.toLowerCase() === (search.get('state') ?? '').toLowerCase());
  const page = Number.parseInt(search.get('page') ?? '1', 10);
  return { text: (search.get('q') ?? '').trim().slice(0, 200), state, page: Number.isSafeInteger(page) && page > 0 ? page : 1 };
}

/** The query as a URL's search part, `page` replaced when given. */
export function searchOf(query: PageQuery, page = query.page): string {
  const search = new URLSearchParams();
  if (query.text) search.set('q', query.text);
  if (query.state) search.set('state', query.state);
  if (page > 1) search.set('page', String(page));
  const text = search.toString();
  return text ? `?${text}` : '';
}

export interface TenantPage {
  readonly tenants: readonly FleetTenant[];
  /** Tenants that match the filter, on every page. */
  readonly matched: number;
  readonly page: number;
  readonly pages: number;
  /** Tenants of each state in the whole fleet (the filter's counts). */
  readonly counts: Readonly<Record<Health, number>>;
}

const rank: Record<Health, number> = { Inactive: 0, Degraded: 1, Active: 2 };

export function tenantPage(tenants: readonly FleetTenant[], query: PageQuery): TenantPage {
  const counts: Record<Health, number> = { Inactive: 0, Degraded: 0, Active: 0 };
  for (const tenant of tenants) counts[tenant.overall] += 1;
  const text = query.text.toLowerCase();
  const matching = tenants.filter((tenant) => (query.state === undefined || tenant.overall === query.state)
    && (text === '' || tenant.tenant.toLowerCase().includes(text) || (tenant.domain ?? '').toLowerCase().includes(text)));
  const sorted = matching.map((tenant) => ({ tenant, lag: worstLag(tenant) }))
    .sort((a, b) => rank[a.tenant.overall] - rank[b.tenant.overall] || b.lag - a.lag || nameOf(a.tenant).localeCompare(nameOf(b.tenant)))
    .map(({ tenant }) => tenant);
  const pages = Math.max(1, Math.ceil(sorted.length / tenantsPerPage));
  const page = Math.min(query.page, pages);
  return { tenants: sorted.slice((page - 1) * tenantsPerPage, page * tenantsPerPage), matched: sorted.length, page, pages, counts };
}

export const nameOf = (tenant: FleetTenant) => tenant.domain ?? tenant.tenant;

function worstLag(tenant: FleetTenant): number {
  let worst = -1;
  for (const row of tenant.contentTypes) worst = Math.max(worst, row.lagSeconds ?? Number.MAX_SAFE_INTEGER);
  return worst;
}
