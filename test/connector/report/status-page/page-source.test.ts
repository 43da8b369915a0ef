import { describe, expect, it } from 'vitest';
import { contentTypes } from '../../../../contract/content-types.ts';
import { openStateDatabase } from '../../../../connector/state/sqlite/store.ts';
import type { StateDatabase } from '../../../../connector/state/store.ts';
import { startHealthServer } from '../../../../connector/report/health-server.ts';
import { ConnectorMetrics } from '../../../../connector/report/metrics.ts';
import { StatusPageSource } from '../../../../connector/report/status-page/page-source.ts';
import { lagSampleIntervalMs } from '../../../../connector/report/status-page/lag-history.ts';
import { Telemetry } from '../../../../connector/observe/telemetry.ts';
import { quietLogger, workDir } from '../../../e2e/support.ts';

const tenantId = (i: number) => `${i.toString(16).padStart(8, '0')}-1111-4111-8111-111111111111`;

describe('status page source: the running store', () => {
  it('a 2,000-tenant state: the page is one store read per 10 s, under 1 MB, with lag sampled per unit (times reported)', { timeout: 180_000 }, async () => {
    const dir = await workDir();
    const database = await openStateDatabase(dir, { lockWaitMs: 0, workerName: 'w1' });
    const tenants = 2000;
    const types = contentTypes.slice(0, 5);
    try {
      const seeding = performance.now();
      const checkpoint = new Date(Date.now() - 20 * 60_000).toISOString();
      for (let i = 0; i < tenants; i += 1) {
        const store = database.tenant(tenantId(i));
        for (const contentType of types) {
          await store.commit(i % 10 === 3
            ? { contentType, at: new Date().toISOString(), lastError: { code: 'AUDIT_LOG_DISABLED', message: 'AUDIT_LOG_DISABLED: auditing is off. Fix: turn it on', at: new Date().toISOString() } }
            : { contentType, at: new Date().toISOString(), checkpoint, records: 100 });
        }
      }
      const seededMs = performance.now() - seeding;
      let now = Date.now();
      let reads = 0;
      // The store as the run holds it, its reads counted.
      const counted: StateDatabase = {
        location: database.location, claims: database.claims, tenant: (tenant) => database.tenant(tenant), close: () => database.close(),
        tenants: () => { reads += 1; return database.tenants(); },
      };
      const source = new StatusPageSource({
        database: () => counted, stalledAfterSeconds: 120, now: () => new Date(now),
        tenants: () => Array.from({ length: tenants }, (_, i) => ({ tenant: tenantId(i), domain: `customer-${i}.onmicrosoft.com`, secretExpiresAt: new Date(now + (i % 90) * 86_400_000) })),
      });
      const reading = performance.now();
      const view = (await source.view())!;
      const readMs = performance.now() - reading;
      expect(view.report.tenants).toHaveLength(tenants);
      expect(await source.view()).toBe(view); // within 10 s: the same report, no second read
      expect(reads).toBe(1);

      const metrics = new ConnectorMetrics({ tenants: () => [], telemetry: new Telemetry(), sinkNames: [] });
      const server = await startHealthServer('127.0.0.1:0', { metrics, logger: quietLogger().logger, page: source, readiness: async () => ({ ready: true, reasons: [] }) });
      try {
        const asking = performance.now();
        const answer = await fetch(`http://${server.address}/`);
        const page = await answer.text();
        const answerMs = performance.now() - asking;
        expect(answer.status).toBe(200);
        const bytes = Buffer.byteLength(page);
        expect(bytes).toBeLessThan(1_000_000);
        const rows = [...page.matchAll(/<tr data-tenant="[^"]+" data-state="(\w+)">/g)].map((m) => m[1]);
        expect(rows).toHaveLength(100);
        expect(rows.slice(0, 100)).toEqual(Array(100).fill('Inactive')); // 200 failing tenants lead
        expect(page).toContain('page 1 of 20');
        console.info(`status page from a SQLite state of ${tenants} tenants × ${types.length} content types: seeding ${(seededMs / 1000).toFixed(1)} s; `
          + `reading the store into the fleet's report ${readMs.toFixed(0)} ms (once per 10 s at most); GET / (from that report) ${answerMs.toFixed(0)} ms, ${bytes.toLocaleString('en-US')} bytes`);
      } finally {
        await server.close();
      }

      // An interval later: a new read, and each unit's lag has a second sample.
      now += lagSampleIntervalMs;
      await source.view();
      expect(reads).toBe(2);
      expect(source.history.of(`${tenantId(0)}/Audit.General`)).toHaveLength(2);
      expect(source.history.of(`${tenantId(3)}/Audit.General`)).toEqual([]);
    } finally {
      await database.close();
    }
  });
});
