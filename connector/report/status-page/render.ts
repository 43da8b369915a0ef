/**
 * The status page as server-rendered HTML and SVG: the fleet as a grid of tenants × content types coloured by state
 * (`/`), and one tenant's units in full (`/tenants/<id>`). No script, no external asset: it works on an isolated
 * network, and refreshes itself. It shows what `status` shows; no secret is in its input, and every line is passed
 * through the redaction of known secret values all the same.
 */
import { collectedTypes, type CollectedType } from '../../../contract/content-types.ts';
import { unitName } from '../../core/commit.ts';
import { redactSecrets } from '../../observe/secret-values.ts';
import { describeHistory, describeRate, describeServices, formatLag, lagThresholdSeconds, type FleetReport, type FleetUnitStatus } from '../status-report.ts';
import { healthStates, nameOf, searchOf, tenantPage, type FleetTenant, type PageQuery } from './fleet-page.ts';
import { html, Markup } from './html.ts';
import type { LagHistory } from './lag-history.ts';
import { sparkline } from './sparkline.ts';

export interface StatusPageView {
  readonly report: FleetReport;
  /** When the report was made. */
  readonly at: Date;
  /** Each tenant's client secret expiry, when its credential is a secret. */
  readonly secretExpiry: ReadonlyMap<string, Date>;
  readonly history: LagHistory;
  readonly refreshSeconds: number;
}

const gridSpark = { width: 96, height: 18, maxPoints: 36, thresholdSeconds: lagThresholdSeconds };
const tenantSpark = { width: 480, height: 60, maxPoints: 360, thresholdSeconds: lagThresholdSeconds };

export function renderFleetPage(view: StatusPageView, query: PageQuery): string {
  const { report } = view;
  const page = tenantPage(report.tenants, query);
  const types = typesOf(report.tenants);
  const body = html`
<header><h1>o365-connector <span class="badge ${report.overall}">${report.overall}</span></h1>
<p>${report.tenants.length} tenant(s) · ${healthStates.map((state) => `${page.counts[state]} ${state}`).join(' · ')} · state ${report.state} · ${workersLine(report)} · as of ${iso(view.at)}</p></header>
${unusableFiles(report)}
<form method="get" action="/" role="search">
<input type="search" name="q" value="${query.text}" placeholder="tenant name or id" aria-label="tenant name or id">
<select name="state" aria-label="state"><option value="">every state</option>${healthStates.map((state) => html`<option value="${state}"${new Markup(query.state === state ? ' selected' : '')}>${state} (${page.counts[state]})</option>`)}</select>
<button type="submit">Filter</button>${query.text || query.state ? html` <a href="/">clear</a>` : ''}
</form>
<p class="count">${page.matched} tenant(s) match · page ${page.page} of ${page.pages}</p>
<table class="grid">
<thead><tr><th>tenant</th>${types.map((type) => html`<th>${type}</th>`)}</tr></thead>
<tbody>
${page.tenants.map((tenant) => tenantRow(view, tenant, types))}
</tbody></table>
${pager(query, page.page, page.pages)}`;
  return documentOf(`o365-connector: ${report.overall}`, view.refreshSeconds, body);
}

/** Undefined when the fleet has no such tenant. */
export function renderTenantPage(view: StatusPageView, tenantId: string): string | undefined {
  const tenant = view.report.tenants.find((candidate) => candidate.tenant.toLowerCase() === tenantId.toLowerCase());
  if (!tenant) return undefined;
  const body = html`
<p><a href="/">← every tenant</a></p>
<header><h1>${nameOf(tenant)} <span class="badge ${tenant.overall}">${tenant.overall}</span></h1>
<p>tenant ${tenant.tenant} · as of ${iso(view.at)}</p></header>
${tenantFacts(view, tenant, 'dl')}
${tenant.contentTypes.map((row) => unitSection(view, tenant, row))}`;
  return documentOf(`${nameOf(tenant)}: ${tenant.overall}`, view.refreshSeconds, body);
}

function tenantRow(view: StatusPageView, tenant: FleetTenant, types: readonly CollectedType[]): Markup {
  const byType = new Map(tenant.contentTypes.map((row) => [row.contentType, row]));
  return html`<tr data-tenant="${tenant.tenant}" data-state="${tenant.overall}">
<th class="${tenant.overall}"><a href="/tenants/${encodeURIComponent(tenant.tenant)}">${nameOf(tenant)}</a>${tenant.domain ? html`<small>${tenant.tenant}</small>` : ''}${tenantFacts(view, tenant, 'ul')}</th>
${types.map((type) => { const row = byType.get(type); return row ? unitCell(view, tenant, row) : html`<td class="none">–</td>`; })}
</tr>
`;
}

function unitCell(view: StatusPageView, tenant: FleetTenant, row: FleetUnitStatus): Markup {
  const error = row.lastError ? splitFix(row.lastError.message) : undefined;
  return html`<td class="${row.health}" data-state="${row.health}" title="${row.reasons.join('; ')}">
<b>${row.health}</b> lag ${formatLag(row.lagSeconds)} · ${row.recordsDelivered.toLocaleString('en-US')} rec
${sparkline(view.history.of(unitName({ tenant: tenant.tenant, contentType: row.contentType })), gridSpark)}
${error ? html`<p class="error" title="${row.lastError!.message}">${error.what}${error.fix ? html`<br><i>Fix: ${error.fix}</i>` : ''}</p>` : ''}</td>`;
}

function unitSection(view: StatusPageView, tenant: FleetTenant, row: FleetUnitStatus): Markup {
  const error = row.lastError ? splitFix(row.lastError.message) : undefined;
  const facts: Array<[string, string]> = [
    ['worker', row.holder ?? 'none holds it'], ['checkpoint', row.checkpoint ?? '-'], ['lag', formatLag(row.lagSeconds)],
    ['records delivered', row.recordsDelivered.toLocaleString('en-US')], ['duplicates dropped', row.duplicatesDropped.toLocaleString('en-US')],
    ['blobs expired', String(row.expiredCount)], ['blobs held for retry', String(row.heldBlobs)],
    ['late blobs (max lateness)', `${row.lateBlobs} (${formatLag(row.maxLatenessSeconds)})`], ['last sweep', row.lastSweepAt ?? '-'],
    ['last delivery', row.lastDeliveryAt ?? '-'],
  ];
  if (row.history) facts.push(['history', describeHistory(row.history)]);
  if (row.services) facts.push(['services', describeServices(row.services)]);
  return html`<section class="unit ${row.health}" data-content-type="${row.contentType}" data-state="${row.health}">
<h2>${row.contentType} <span class="badge ${row.health}">${row.health}</span></h2>
${row.reasons.length > 0 ? html`<p>${row.reasons.join('; ')}</p>` : ''}
${sparkline(view.history.of(unitName({ tenant: tenant.tenant, contentType: row.contentType })), tenantSpark)}
${error ? html`<p class="error">at ${row.lastError!.at}: ${error.what}${error.fix ? html`<br><i>Fix: ${error.fix}</i>` : ''}</p>` : ''}
<dl>${facts.map(([name, value]) => html`<dt>${name}</dt><dd>${value}</dd>`)}</dl>
</section>
`;
}

/** Secret expiry, throttling and the workers holding the tenant's units. */
function tenantFacts(view: StatusPageView, tenant: FleetTenant, list: 'ul' | 'dl'): Markup {
  const expiry = view.secretExpiry.get(tenant.tenant);
  const days = expiry ? (expiry.getTime() - view.at.getTime()) / 86_400_000 : undefined;
  const secret = expiry === undefined ? 'no secret expiry known' : days! < 0 ? `secret expired ${iso(expiry)}` : `secret expires in ${Math.floor(days!)} d (${iso(expiry).slice(0, 10)})`;
  const secretClass = days === undefined ? '' : days < 7 ? 'urgent' : days < 30 ? 'soon' : '';
  const rate = tenant.apiRate;
  const throttling = !rate ? 'request rate not known yet' : rate.learnedPerMinute === undefined ? 'never throttled'
    : `${rate.throttledNow ? 'throttled now' : 'throttled earlier'}: ${rate.throttled.toLocaleString('en-US')} AF429, ${rate.perMinute.toLocaleString('en-US')}/min`;
  const holders = [...new Set(tenant.contentTypes.map((row) => row.holder ?? 'none'))].sort();
  const workers = `worker${holders.length === 1 ? '' : 's'}: ${holders.join(', ')}`;
  if (list === 'ul') return html`<ul class="facts"><li class="${secretClass}">${secret}</li><li>${throttling}</li><li>${workers}</li></ul>`;
  return html`<dl><dt>secret</dt><dd class="${secretClass}">${secret}</dd><dt>request rate</dt><dd>${rate ? describeRate(rate) : 'not known yet'}</dd><dt>workers</dt><dd>${holders.join(', ')}</dd></dl>`;
}

function unusableFiles(report: FleetReport): Markup | '' {
  const files = report.unusableTenantFiles ?? [];
  if (files.length === 0) return '';
  return html`<ul class="problems">${files.map((file) => html`<li>${file.file}: ${file.problem}${file.keptTenant ? ` (tenant ${file.keptTenant} runs on its last good file)` : ' (not collected)'}</li>`)}</ul>`;
}

function pager(query: PageQuery, page: number, pages: number): Markup | '' {
  if (pages <= 1) return '';
  return html`<nav class="pager">${page > 1 ? html`<a rel="prev" href="/${searchOf(query, page - 1)}">← previous</a>` : ''} page ${page} of ${pages} ${page < pages ? html`<a rel="next" href="/${searchOf(query, page + 1)}">next →</a>` : ''}</nav>`;
}

function workersLine(report: FleetReport): string {
  return report.workers.length === 0 ? 'no worker holds a unit' : `workers: ${report.workers.map((w) => `${w.worker} (${w.units})`).join(', ')}`;
}

/** The content types any tenant of the fleet has, in the usual order. */
function typesOf(tenants: readonly FleetTenant[]): CollectedType[] {
  const present = new Set(tenants.flatMap((tenant) => tenant.contentTypes.map((row) => row.contentType)));
  return collectedTypes.filter((type) => present.has(type));
}

/** `CODE: what. Fix: how` as its two parts. */
function splitFix(line: string): { what: string; fix: string | undefined } {
  const at = line.indexOf(' Fix: ');
  return at === -1 ? { what: line, fix: undefined } : { what: line.slice(0, at), fix: line.slice(at + ' Fix: '.length) };
}

const iso = (at: Date) => at.toISOString().replace('.000Z', 'Z');

const style = `
body{font:13px/1.35 system-ui,sans-serif;margin:1em;color:#1b1f24;background:#fff}
h1{font-size:1.4em;margin:.2em 0}h2{font-size:1.1em}a{color:#0b5cad}
.badge{font-size:.7em;padding:.15em .5em;border-radius:.8em;vertical-align:middle}
.Active{background:#dcf5e3}.Degraded{background:#fff0c2}.Inactive{background:#fbd5d5}
.badge.Active{background:#1f883d;color:#fff}.badge.Degraded{background:#bf8700;color:#fff}.badge.Inactive{background:#cf222e;color:#fff}
form{margin:.6em 0}input[type=search]{width:22em}
table.grid{border-collapse:collapse}table.grid td,table.grid th{border:1px solid #d0d7de;padding:.3em .4em;vertical-align:top;text-align:left;max-width:18em}
table.grid th small{display:block;color:#57606a;font-weight:normal}
ul.facts{list-style:none;margin:.2em 0 0;padding:0;font-weight:normal;font-size:.85em}
.soon{color:#9a6700;font-weight:bold}.urgent{color:#cf222e;font-weight:bold}
td.none{color:#8c959f}p.error{margin:.2em 0;font-size:.85em;color:#82071e;overflow-wrap:anywhere}
svg.spark{display:block}svg.spark polyline{fill:none;stroke-width:1.5}svg.spark .under{stroke:#1f883d;fill:#1f883d}svg.spark .over{stroke:#cf222e;fill:#cf222e}svg.spark polyline.under,svg.spark polyline.over{fill:none}
svg.spark line.limit{stroke:#d0d7de;stroke-dasharray:2 2}svg.spark text{font-size:10px;fill:#57606a}
section.unit{border:1px solid #d0d7de;padding:.2em .8em;margin:.6em 0}dl{display:grid;grid-template-columns:max-content auto;gap:.1em 1em}dd{margin:0}
.problems{color:#82071e}
`;

function documentOf(title: string, refreshSeconds: number, body: Markup): string {
  const page = html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="${refreshSeconds}">
<title>${title}</title><style>${new Markup(style)}</style></head>
<body>${body}
</body></html>
`;
  return redactSecrets(page.text);
}

