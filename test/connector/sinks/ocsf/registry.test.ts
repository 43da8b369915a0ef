import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { contentTypes } from '../../../../contract/content-types.ts';
import { Corpus } from '../../../emulator/corpus.ts';
import { mapValid } from './records.ts';

const fixtures = join(import.meta.dirname, '../../../fixtures/records');

describe('every record maps to a valid OCSF 1.8.0 event', () => {
  it('maps every fixture record (Exchange admin, SharePoint and OneDrive file operations, Azure AD STS logons) to a valid event of its family', () => {
    const families = new Map<string, string>();
    for (const file of readdirSync(fixtures).filter((name) => name.endsWith('.jsonl'))) {
      for (const line of readFileSync(join(fixtures, file), 'utf8').split('\n').filter(Boolean)) {
        const { event, mapping, problems } = mapValid(line);
        expect(problems, `${file}: ${line.slice(0, 80)}`).toEqual([]);
        expect(event['raw_data']).toBe(line);
        expect(event['metadata']['uid']).toBe(JSON.parse(line).Id);
        families.set(JSON.parse(line).Operation, mapping.family);
      }
    }
    expect(Object.fromEntries(families)).toEqual({ 'Set-Mailbox': 'exchange', 'Install-DefaultSharingPolicy': 'exchange', FileDeleted: 'file-hosting', FileUploaded: 'file-hosting', UserLoggedIn: 'sign-ins' });
  });

  it('maps a blob of Azure AD account logons (RecordType 9, one failed) and an Add User. record, in the shapes of Microsoft\'s API reference example', () => {
    const blob = readFileSync(join(import.meta.dirname, '../../../fixtures/blobs/azure-ad-account-logons.json'), 'utf8');
    const records = JSON.parse(blob) as unknown[];
    const mapped = records.map((record) => {
      const { event, mapping, problems } = mapValid(JSON.stringify(record));
      expect(problems).toEqual([]);
      return [mapping.classUid, event['status_id']];
    });
    expect(mapped).toEqual([[3002, 2], [3002, 1], [3001, 1]]);
  });

  it('maps every record shape the stand-in serves, tricky encodings included, with raw_data the exact bytes', () => {
    const corpus = new Corpus({ seed: 11, tenantId: '2f0c3a11-6c55-4d8a-9a1e-0d7d2c1b4e77', tenantDomain: 'contoso.onmicrosoft.com', origin: new Date('2026-03-01T00:00:00Z'), blobIntervalMinutes: 10, recordsPerBlob: 100, lateBlobRate: 0, duplicateRate: 0 });
    const seen = new Set<string>();
    let records = 0;
    for (const contentType of contentTypes) {
      for (let index = 0; index < 6; index += 1) {
        for (const record of corpus.rawRecords(corpus.blob(contentType, index))) {
          const text = record.bytes.toString('utf8');
          const { event, mapping, problems } = mapValid(text, contentType);
          expect(problems, text).toEqual([]);
          expect(event['raw_data']).toBe(text);
          expect(event['metadata']['uid']).toBe(record.id);
          expect(event['time']).toBe(Date.parse(`${record.creationTime}Z`));
          seen.add(`${contentType} ${(JSON.parse(text) as { Operation: string }).Operation} → ${mapping.classUid} ${mapping.family}`);
          records += 1;
        }
      }
    }
    expect(records).toBe(3000);
    // Every operation of every content type the stand-in serves was seen, each in the class its family gives it.
    expect([...seen].sort()).toMatchSnapshot();
  });

  it('sends what no family takes to API Activity with actor, operation, workload, client IP, status and time', () => {
    const record = '{"CreationTime":"2026-03-02T15:30:00","Id":"22222222-3333-4444-8555-666666666666","Operation":"TeamCreated","OrganizationId":"2f0c3a11-6c55-4d8a-9a1e-0d7d2c1b4e77","RecordType":25,"ResultStatus":"Succeeded","UserKey":"10032001A1B2C3D4","UserType":0,"Version":1,"Workload":"MicrosoftTeams","ClientIP":"203.0.113.24","ObjectId":"Incident Response","UserId":"megan.bowen@contoso.onmicrosoft.com","TeamName":"Incident Response"}';
    const { event, mapping, problems } = mapValid(record, 'Audit.General');
    expect(problems).toEqual([]);
    expect(mapping).toMatchObject({ family: 'generic', fallback: true, classUid: 6003 });
    expect(event).toMatchObject({
      class_uid: 6003, activity_id: 1, activity_name: 'Create', type_uid: 600301, type_name: 'API Activity: Create',
      actor: { user: { name: 'megan.bowen@contoso.onmicrosoft.com' } }, api: { operation: 'TeamCreated', service: { name: 'MicrosoftTeams' } },
      src_endpoint: { ip: '203.0.113.24' }, status_id: 1, status: 'Success', time: Date.parse('2026-03-02T15:30:00Z'), resources: [{ name: 'Incident Response' }],
      unmapped: { RecordType: 25, Version: 1, TeamName: 'Incident Response' },
    });
  });

  it('keeps a record without CreationTime or ClientIP valid, and what it could not read in unmapped', () => {
    const { event, problems } = mapValid('{"Id":"33333333-4444-4555-8666-777777777777","Operation":"Odd","ClientIP":"not an address","RecordType":999}');
    expect(problems).toEqual([]);
    expect(event).toMatchObject({ src_endpoint: { name: 'Unknown' }, unmapped: { ClientIP: 'not an address' } });
  });
});
