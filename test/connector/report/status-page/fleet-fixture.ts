/** A fleet's report as the status page is given it, made up: `tenants` tenants, every content type, some failing. */
import { collectedTypes } from '../../../../contract/content-types.ts';
import { unitName } from '../../../../connector/core/commit.ts';
import type { FleetReport, FleetUnitStatus, Health } from '../../../../connector/report/status-report.ts';
import { LagHistory, lagSampleCapacity, lagSampleIntervalMs } from '../../../../connector/report/status-page/lag-history.ts';
import type { StatusPageView } from '../../../../connector/report/status-page/render.ts';

export const fixtureNow = new Date('2026-12-01T12:00:00.000Z');

const failure = 'AUDIT_LOG_DISABLED: Microsoft answered AF20012: the tenant has not enabled the unified audit log (Auditing is off), so no content is listed for it. Fix: turn on auditing in the Microsoft Purview compliance portal (Audit → Start recording user and admin activity), then wait up to 60 minutes';

function unit(contentType: (typeof collectedTypes)[number], health: Health, lagSeconds: number | undefined, worker: string): FleetUnitStatus {
  return {
    contentType, subscription: 'enabled', checkpoint: lagSeconds === undefined ? undefined : new Date(fixtureNow.getTime() - lagSeconds * 1000).toISOString(), lagSeconds,
    lastContentSeen: undefined, lastDeliveryAt: undefined, recordsDelivered: 123_456, blobsDelivered: 321, duplicatesDropped: 12, expiredCount: 0, lastExpired: [],
    heldBlobs: 0, lateBlobs: 2, maxLatenessSeconds: 3600, lastSweepAt: fixtureNow.toISOString(),
    lastError: health === 'Active' ? undefined : { code: 'AUDIT_LOG_DISABLED', message: failure, at: fixtureNow.toISOString() },
    health, reasons: health === 'Active' ? [] : ['last pass failed: AUDIT_LOG_DISABLED'], holder: worker,
  };
}

/** Every 10th tenant Inactive, every 7th Degraded; tenant i is `tenant-<i>.example.com`. */
export function fleetView(tenants: number, options: { fullHistory?: boolean } = {}): StatusPageView {
  const history = new LagHistory();
  const report: FleetReport = { overall: 'Degraded', state: 'postgres://db.internal/o365', workers: [{ worker: 'w1', units: tenants * 3 }, { worker: 'w2', units: tenants * 3 }], tenants: [] };
  for (let i = 0; i < tenants; i += 1) {
    const health: Health = i % 10 === 3 ? 'Inactive' : i % 7 === 5 ? 'Degraded' : 'Active';
    const tenant = `${i.toString(16).padStart(8, '0')}-0000-4000-8000-000000000000`;
    const contentTypes = collectedTypes.map((type, t) => unit(type, health, health === 'Inactive' ? undefined : 900 + i + t * 60, t % 2 ? 'w1' : 'w2'));
    report.tenants.push({ tenant, domain: `tenant-${i}.example.com`, overall: health, contentTypes, apiRate: { perMinute: 1900, ceilingPerMinute: 2000, throttled: i % 5, throttledNow: i % 11 === 0, ...(i % 5 ? { learnedPerMinute: 1800 } : {}), at: fixtureNow.toISOString() } });
  }
  const samples = options.fullHistory ? lagSampleCapacity : 1;
  for (let s = samples - 1; s >= 0; s -= 1) {
    history.record(new Date(fixtureNow.getTime() - s * lagSampleIntervalMs), report.tenants.flatMap((t) => t.contentTypes.map((row) => [unitName({ tenant: t.tenant, contentType: row.contentType }), row.lagSeconds === undefined ? undefined : row.lagSeconds + s * 7] as const)));
  }
  const secretExpiry = new Map(report.tenants.map((t, i) => [t.tenant, new Date(fixtureNow.getTime() + (i % 40) * 86_400_000)]));
  return { report, at: fixtureNow, secretExpiry, history, refreshSeconds: 30 };
}
