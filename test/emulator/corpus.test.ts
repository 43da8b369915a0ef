import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from 'undici';
import { contentTypes } from '../../connector/api/content-types.ts';
import { Corpus } from './corpus.ts';
import { startEmulator, type Emulator } from './index.ts';
import { createTestPki, type TestPki } from './tls.ts';
import { apiTime, callApi, listAll, msalToken } from './support.ts';

const hour = 3_600_000;
const day = 24 * hour;
const fixedNow = new Date('2026-11-20T12:00:00Z');
let pki: TestPki;
let agent: Agent;

beforeAll(async () => {
  pki = await createTestPki();
  agent = new Agent({ connect: { ca: pki.caCertPem } });
});
afterAll(async () => { await agent.close(); });

/** Everything a subscriber can fetch: every content type, seven one-day windows, every page, every blob. */
async function crawl(emulator: Emulator): Promise<string[]> {
  const token = await msalToken(emulator, agent);
  const ids: string[] = [];
  const now = emulator.now().getTime();
  for (const contentType of contentTypes) {
    for (let back = 7; back >= 1; back -= 1) {
      const start = new Date(now - back * day);
      const end = new Date(start.getTime() + day);
      const { entries } = await listAll(emulator, agent, token, `subscriptions/content?contentType=${contentType}&startTime=${apiTime(start)}&endTime=${apiTime(end)}`);
      for (const entry of entries) {
        const blob = await callApi(emulator, agent, token, entry.contentUri);
        if (blob.status !== 200) throw new Error(`${entry.contentUri} answered ${blob.text}`);
        ids.push(...blob.body.map((record: { Id: string }) => record.Id));
      }
    }
  }
  return ids;
}

describe('corpus', () => {
  it('is the same for the same seed and different for another, ids and secret included', async () => {
    const [a, b, c] = await Promise.all([11, 11, 12].map((seed) => startEmulator({ pki, seed, now: () => fixedNow, days: 1 })));
    try {
      expect([...a!.groundTruth('Audit.SharePoint')]).toEqual([...b!.groundTruth('Audit.SharePoint')]);
      expect([...a!.groundTruth('Audit.SharePoint')]).not.toEqual([...c!.groundTruth('Audit.SharePoint')]);
      expect([a!.tenantId, a!.clientId, a!.clientSecret]).toEqual([b!.tenantId, b!.clientId, b!.clientSecret]);
      expect(a!.tenantId).not.toBe(c!.tenantId);
      expect(a!.tenantId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      const blob = a!.corpus.blobsCreatedIn('Audit.Exchange', new Date(fixedNow.getTime() - hour), fixedNow)[0]!;
      expect(JSON.stringify(a!.corpus.records(blob))).toBe(JSON.stringify(b!.corpus.records(b!.corpus.blobOf(blob.contentId)!)));
    } finally {
      await Promise.all([a!.stop(), b!.stop(), c!.stop()]);
    }
  });

  it('has realistic records for all five content types', () => {
    const corpus = new Corpus({ seed: 5, tenantId: '4a1c2b3d-0e9f-4a8b-9c7d-6e5f4a3b2c1d', tenantDomain: 'contoso.onmicrosoft.com', origin: new Date(fixedNow.getTime() - day), blobIntervalMinutes: 30, recordsPerBlob: 40, lateBlobRate: 0, duplicateRate: 0 });
    const expected = {
      'Audit.AzureActiveDirectory': { workloads: ['AzureActiveDirectory'], recordTypes: [15] },
      'Audit.Exchange': { workloads: ['Exchange'], recordTypes: [1, 2] },
      'Audit.SharePoint': { workloads: ['SharePoint', 'OneDrive'], recordTypes: [4, 6] },
      'Audit.General': { workloads: ['MicrosoftTeams'], recordTypes: [25] },
      'DLP.All': { workloads: ['Exchange'], recordTypes: [13] },
    } as const;
    for (const contentType of contentTypes) {
      const records = corpus.records(corpus.blob(contentType, 3));
      for (const record of records) {
        expect(expected[contentType].workloads).toContain(record['Workload']);
        expect(expected[contentType].recordTypes).toContain(record['RecordType']);
        expect(record).toMatchObject({ OrganizationId: '4a1c2b3d-0e9f-4a8b-9c7d-6e5f4a3b2c1d', UserType: expect.any(Number), UserKey: expect.any(String), ClientIP: expect.stringMatching(/^\d+\.\d+\.\d+\.\d+$/) });
      }
      expect(new Set(records.map((record) => record.Id)).size).toBe(records.length);
      expect(JSON.stringify(records)).not.toMatch(/testsiem|b86ab9d4-fcf1-4b11-8a06-7a8f91b47fbd/);
    }
  });

  it('knows the ground truth: a full crawl of every content type returns exactly its distinct ids, duplicates across blobs included', async () => {
    const emulator = await startEmulator({ pki, seed: 21, now: () => fixedNow, days: 9, blobIntervalMinutes: 60, recordsPerBlob: 3, pageSize: 9, duplicateRate: 0.3, lateBlobRate: 0.2, enabledContentTypes: [...contentTypes] });
    try {
      emulator.addContent('Audit.General', { count: 2, contentCreated: new Date(fixedNow.getTime() - 2 * hour) });
      emulator.addContent('Audit.General', { records: [{ Id: 'b7c1f4e2-9a3d-4e5f-8a6b-1c2d3e4f5a6b', Operation: 'TeamCreated' }], contentCreated: new Date(fixedNow.getTime() - 60_000) });
      const ids = await crawl(emulator);
      const truth = emulator.groundTruth();
      expect(new Set(ids)).toEqual(truth);
      expect(ids.length).toBeGreaterThan(truth.size);
      expect([...emulator.groundTruthIds()]).toHaveLength(ids.length);
      expect(emulator.groundTruthCount().records).toBe(ids.length);
      // Nothing older than seven days, nothing not yet listed.
      const early = emulator.corpus.blobsCreatedIn('Audit.Exchange', new Date(fixedNow.getTime() - 9 * day), new Date(fixedNow.getTime() - 7 * day - hour));
      expect(truth.has(emulator.corpus.records(early[0]!)[0]!.Id)).toBe(false);
    } finally {
      await emulator.stop();
    }
  });

  it('counts a large backfill lazily without holding its records', () => {
    const corpus = new Corpus({ seed: 1, tenantId: '4a1c2b3d-0e9f-4a8b-9c7d-6e5f4a3b2c1d', tenantDomain: 'contoso.onmicrosoft.com', origin: new Date(fixedNow.getTime() - 7 * day), blobIntervalMinutes: 1, recordsPerBlob: 100, lateBlobRate: 0, duplicateRate: 0.05 });
    const blobs = corpus.blobsCreatedIn('Audit.Exchange', new Date(fixedNow.getTime() - 7 * day), fixedNow);
    expect(blobs).toHaveLength(7 * 24 * 60);
    let records = 0;
    for (const _id of corpus.recordIds(blobs)) records += 1;
    expect(records).toBeGreaterThan(1_000_000);
  });

  it('lets content arrive now and late, by hand and from the arrival generator', async () => {
    let clock = fixedNow;
    const emulator = await startEmulator({ pki, seed: 22, now: () => clock, days: 1, arrivalIntervalMs: 3_600_000, arrivalLateRate: 0.5, enabledContentTypes: ['Audit.Exchange'] });
    try {
      const before = emulator.groundTruth('Audit.Exchange').size;
      await emulator.tick();
      await emulator.tick();
      clock = new Date(fixedNow.getTime() + 1000);
      const added = emulator.corpus.blobsCreatedIn('Audit.Exchange', new Date(fixedNow.getTime() - 2 * hour), clock).filter((blob) => blob.added !== undefined);
      expect(added).toHaveLength(2);
      expect(added.some((blob) => blob.contentCreated < blob.visibleAt)).toBe(true);
      expect(emulator.groundTruth('Audit.Exchange').size).toBe(before + 40);
      const late = emulator.addContent('Audit.Exchange', { contentCreated: new Date(clock.getTime() - 3 * hour), count: 5 });
      expect(late.visibleAt).toEqual(clock);
      const token = await msalToken(emulator, agent);
      const listed = await listAll(emulator, agent, token, `subscriptions/content?contentType=Audit.Exchange&startTime=${apiTime(new Date(clock.getTime() - 4 * hour))}&endTime=${apiTime(new Date(clock.getTime() - 2 * hour))}`);
      expect(listed.entries.map((entry) => entry.contentId)).toContain(late.contentId);
      expect((await callApi(emulator, agent, token, `audit/${late.contentId}`)).body).toHaveLength(5);
    } finally {
      await emulator.stop();
    }
  });
});
