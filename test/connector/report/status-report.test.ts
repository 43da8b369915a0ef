import { describe, expect, it } from 'vitest';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { openStateStore } from '../state/open-store.ts';
import { buildStatusReport, formatStatusReport } from '../../../connector/report/status-report.ts';
import { workDir } from '../../e2e/support.ts';

const now = new Date('2026-11-25T10:00:00.000Z');

describe('status report', () => {
  it('reports each content type from the state store while a connector holds it', async () => {
    const dir = await workDir();
    const store = await openStateStore(dir, { lockWaitMs: 0 });
    try {
      await store.commit({ contentType: 'Audit.Exchange', at: '2026-11-25T09:50:00.000Z', checkpoint: '2026-11-25T09:30:00.000Z', records: 120, blobs: [{ contentId: 'b1', contentCreated: '2026-11-25T09:20:00.000Z' }], recordKeys: [{ id: 'r1', creationTime: '2026-11-25T09:01:00' }], sinkPositions: { stdout: null } });
      const gone = { contentId: 'old-blob', contentCreated: '2026-11-18T09:00:00.000Z', detectedAt: '2026-11-25T09:40:00.000Z' };
      await store.commit({ contentType: 'Audit.SharePoint', at: '2026-11-25T09:40:00.000Z', checkpoint: '2026-11-25T09:20:00.000Z', blobs: [gone], expired: [gone] });
      await store.commit({ contentType: 'DLP.All', at: '2026-11-25T09:45:00.000Z', lastError: { code: 'AF10001', message: 'permission denied for DLP.All', at: '2026-11-25T09:45:00.000Z' } });
      // Without a store: the directory is opened read-only for the call, under the running connector.
      const report = await buildStatusReport({ stateDir: dir, now: () => now });
      expect(report).toMatchObject({ overall: 'Degraded', stateDir: dir, updatedAt: '2026-11-25T09:50:00.000Z' });
      expect(report.contentTypes.map((r) => [r.contentType, r.health, r.subscription, r.lagSeconds])).toEqual([
        ['Audit.Exchange', 'Active', 'unknown (offline)', 1800],
        ['Audit.SharePoint', 'Degraded', 'unknown (offline)', 2400],
        ['DLP.All', 'Inactive', 'unknown (offline)', undefined],
      ]);
      expect(report.contentTypes[0]).toMatchObject({ recordsDelivered: 120, blobsDelivered: 1, lastContentSeen: '2026-11-25T09:20:00.000Z', lastDeliveryAt: '2026-11-25T09:50:00.000Z' });
      expect(report.contentTypes[1]).toMatchObject({ expiredCount: 1, lastExpired: [gone], reasons: ['1 blob(s) expired before they were fetched'] });
      expect(report.contentTypes[2]).toMatchObject({ reasons: ['never completed a pass', 'last pass failed: AF10001'] });
      const text = formatStatusReport(report);
      expect(text).toMatch(/^Overall: Degraded {3}\(state .*, saved 2026-11-25T09:50:00\.000Z\)\n/);
      expect(text).toContain('Audit.SharePoint: 1 blob(s) expired before they could be fetched (their records are lost at the source); latest: old-blob (created 2026-11-18T09:00:00.000Z)');
      expect(text).toContain('DLP.All: last error at 2026-11-25T09:45:00.000Z: permission denied for DLP.All');
      // Also from the store a caller already holds.
      expect(await buildStatusReport({ stateDir: dir, store, now: () => now })).toEqual(report);
    } finally {
      await store.close();
    }
  });

  it('says Inactive for a state directory that never ran, and creates nothing', async () => {
    const parent = await workDir();
    const report = await buildStatusReport({ stateDir: join(parent, 'never-ran'), now: () => now });
    expect(report).toEqual({ overall: 'Inactive', stateDir: join(parent, 'never-ran'), updatedAt: undefined, contentTypes: [] });
    expect(formatStatusReport(report)).toContain('No content type has been collected yet');
    expect(await readdir(parent)).toEqual([]);
  });
});
