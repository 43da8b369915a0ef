import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from 'undici';
import { contentTypes } from '../../contract/content-types.ts';
import { Corpus, blobBody, fixtureDomain, fixtureTenantId } from './corpus.ts';
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

/**
 * How each tricky encoding shows in a record's text (outside strings, for the structural ones). Those in
 * `changing` do not survive JSON.parse + JSON.stringify; the rest do, but trip line splitters and brace counters.
 */
const encodings: Record<string, (text: string) => boolean> = {
  'integer-like keys out of order': (text) => [...text.matchAll(/\{"(\d+)":[^{},]*,"(\d+)":/g)].some((m) => Number(m[1]) > Number(m[2])),
  '1.0': (text) => /[:,[]-?\d+\.\d*0[,}\]]/.test(text),
  '1e3': (text) => /[:,[]-?\d+(\.\d+)?[eE][+-]?\d+[,}\]]/.test(text),
  '-0': (text) => /[:,[]-0(\.0+)?[,}\]]/.test(text),
  '\\u00e9 escapes of non-ASCII': (text) => /\\u(?!00[0-7])[0-9a-fA-F]{4}/.test(text),
  '\\/ in URLs': (text) => text.includes('\\/'),
  'integers above 2^53': (text) => [...text.matchAll(/[:,[](\d{16,})[,}\]]/g)].some((m) => BigInt(m[1]!) > 2n ** 53n),
  'raw U+2028': (text) => text.includes('\u2028'),
  'escaped quotes': (text) => text.includes('\\"'),
  'escaped backslashes': (text) => text.includes('\\\\'),
};
const changing = ['integer-like keys out of order', '1.0', '1e3', '-0', '\\u00e9 escapes of non-ASCII', '\\/ in URLs', 'integers above 2^53'];
const corpusOptions = { seed: 5, tenantId: '4a1c2b3d-0e9f-4a8b-9c7d-6e5f4a3b2c1d', tenantDomain: 'contoso.onmicrosoft.com', origin: new Date(fixedNow.getTime() - day), blobIntervalMinutes: 30, lateBlobRate: 0 };

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
      expect(a!.corpus.body(blob).equals(b!.corpus.body(b!.corpus.blobOf(blob.contentId)!))).toBe(true);
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
      expect(JSON.stringify(records)).not.toMatch(new RegExp(`${fixtureDomain}|${fixtureTenantId}`));
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
      expect([...emulator.groundTruthRecords()].map((record) => record.id)).toEqual([...emulator.groundTruthIds()]);
      expect([...emulator.groundTruthBytes().keys()].sort()).toEqual([...truth].sort());
      expect(emulator.groundTruthCount().records).toBe(ids.length);
      // Nothing older than seven days, nothing not yet listed.
      const early = emulator.corpus.blobsCreatedIn('Audit.Exchange', new Date(fixedNow.getTime() - 9 * day), new Date(fixedNow.getTime() - 7 * day - hour));
      expect(truth.has(emulator.corpus.records(early[0]!)[0]!.Id)).toBe(false);
    } finally {
      await emulator.stop();
    }
  });

  it('serves each blob as the exact bytes of its records joined as Microsoft does, repeats included, with every tricky encoding among them', async () => {
    const emulator = await startEmulator({ pki, seed: 23, now: () => fixedNow, days: 1, recordsPerBlob: 10, duplicateRate: 0.5, enabledContentTypes: [...contentTypes] });
    try {
      const truth = emulator.groundTruthBytes();
      const token = await msalToken(emulator, agent);
      const found = new Map<string, Set<string>>(Object.keys(encodings).map((name) => [name, new Set()]));
      let served = 0;
      for (const contentType of contentTypes) {
        const { entries } = await listAll(emulator, agent, token, `subscriptions/content?contentType=${contentType}`);
        for (const entry of entries) {
          const blob = await callApi(emulator, agent, token, entry.contentUri);
          const records = (blob.body as Array<{ Id: string }>).map((record) => truth.get(record.Id)!);
          const expected = Buffer.concat([Buffer.from('['), ...records.flatMap((bytes, n) => (n === 0 ? [bytes] : [Buffer.from(','), bytes])), Buffer.from(']')]);
          expect(blob.bytes.equals(expected), entry.contentId).toBe(true);
          served += records.length;
          for (const bytes of records) {
            for (const [name, shows] of Object.entries(encodings)) if (shows(bytes.toString('utf8'))) found.get(name)!.add(contentType);
          }
        }
      }
      expect(served).toBeGreaterThan(truth.size); // repeats were served, as the same bytes
      for (const [name, types] of found) expect(types.size, name).toBeGreaterThan(0);
      for (const name of changing) expect(found.get(name)!.size, `${name} in several content types`).toBeGreaterThanOrEqual(3);
    } finally {
      await emulator.stop();
    }
  });

  it('gives about one record in five, in every content type, encodings that JSON.parse + JSON.stringify changes, each of them on its own', () => {
    const corpus = new Corpus({ ...corpusOptions, recordsPerBlob: 50, duplicateRate: 0 });
    const alone = new Map(changing.map((name) => [name, 0]));
    for (const contentType of contentTypes) {
      let changed = 0;
      let total = 0;
      for (let index = 0; index < 40; index += 1) {
        for (const { id, text } of corpus.recordTexts(corpus.blob(contentType, index))) {
          const parsed = JSON.parse(text) as { Id: string };
          expect(parsed.Id).toBe(id);
          const changes = JSON.stringify(parsed) !== text;
          const shown = changing.filter((name) => encodings[name]!(text));
          // The encodings are exactly what changes: a record without one is what JSON.stringify would write.
          expect(changes, text).toBe(shown.length > 0);
          if (shown.length === 1) alone.set(shown[0]!, alone.get(shown[0]!)! + 1);
          total += 1;
          if (changes) changed += 1;
        }
      }
      expect(changed / total, contentType).toBeGreaterThan(0.12);
      expect(changed / total, contentType).toBeLessThan(0.28);
    }
    for (const [name, records] of alone) expect(records, name).toBeGreaterThan(0);
  });

  it('repeats a record in a later blob as the same bytes, and a body is its records joined', () => {
    const corpus = new Corpus({ ...corpusOptions, recordsPerBlob: 6, duplicateRate: 1 });
    for (const contentType of contentTypes) {
      for (let index = 1; index < 20; index += 1) {
        const blob = corpus.blob(contentType, index);
        const texts = corpus.recordTexts(blob);
        expect(texts.at(-1)).toEqual(corpus.recordTexts(corpus.blob(contentType, index - 1))[0]);
        expect(corpus.body(blob).equals(Buffer.from(`[${texts.map((record) => record.text).join(',')}]`))).toBe(true);
        expect(corpus.rawRecords(blob).map((record) => record.bytes.toString('utf8'))).toEqual(texts.map((record) => record.text));
        expect([...corpus.recordIds([blob])]).toEqual(texts.map((record) => record.id));
      }
    }
  });

  it('serves records added as exact text byte for byte, and refuses text that is not one JSON object with a string Id', async () => {
    const emulator = await startEmulator({ pki, seed: 24, now: () => fixedNow, days: 1, enabledContentTypes: ['Audit.General'] });
    try {
      const exact = [
        '{"CreationTime":"2026-11-20T11:00:00","Id":"6a1f0c2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b","Extra":{"10":"a","2":"b"},"Count":12345678901234567890,"Url":"https:\\/\\/contoso.sharepoint.com\\/","Name":"Ren\\u00e9e","Ratio":1.0,"Limit":1e3,"Bias":-0}',
        '{ "Id" : "7b2a1d3f-4c5e-4f60-9b0a-1d2e3f4a5b6c", "Subject" : "a\u2028b \\"quoted\\" C:\\\\" }',
      ];
      const blob = emulator.addContent('Audit.General', { recordTexts: exact, contentCreated: new Date(fixedNow.getTime() - 60_000) });
      const token = await msalToken(emulator, agent);
      const served = await callApi(emulator, agent, token, `audit/${blob.contentId}`);
      expect(served.bytes.equals(blobBody(exact))).toBe(true);
      expect(served.bytes.toString('utf8')).toBe(`[${exact.join(',')}]`);
      const truth = emulator.groundTruthBytes('Audit.General');
      expect(truth.get('6a1f0c2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b')!.toString('utf8')).toBe(exact[0]);
      expect(truth.get('7b2a1d3f-4c5e-4f60-9b0a-1d2e3f4a5b6c')!.toString('utf8')).toBe(exact[1]);
      for (const text of ['[{"Id":"x"}]', '{"Id":42}', '{"Id":"x",}', 'null']) {
        expect(() => emulator.addContent('Audit.General', { recordTexts: [text] }), text).toThrow(/recordTexts\[0\] is not/);
      }
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
