import { describe, expect, it } from 'vitest';
import { alert, dlpMatch, mailItemsAccessed, mapValid } from './records.ts';

describe('details of the OCSF mappings', () => {
  it('keeps an alert\'s unrecognised Severity in unmapped instead of dropping it', () => {
    const { event, problems } = mapValid(alert.replace('"Severity":"Medium"', '"Severity":"Sev2"'));
    expect(problems).toEqual([]);
    expect(event['unmapped']).toMatchObject({ Severity: 'Sev2' });
    const known = mapValid(alert).event;
    expect(known['unmapped']).not.toHaveProperty('Severity');
  });

  it('keeps a DLP rule\'s unrecognised Severity (it stays whole in PolicyDetails) and gives the finding a uid without IncidentId or Id', () => {
    const record = dlpMatch.replace('"IncidentId":"8a7b6c5d-4e3f-4a2b-9c1d-0e9f8a7b6c5d",', '').replace('"Id":"b4c5d6e7-f8a9-4b0c-9d1e-2f3a4b5c6d7e",', '');
    const first = mapValid(record);
    expect(first.problems).toEqual([]);
    expect(first.event['finding_info']['uid']).toEqual(expect.any(String));
    expect(mapValid(record).event['finding_info']['uid']).toBe(first.event['finding_info']['uid']); // the same record, the same uid
    expect(mapValid(record.replace('"High volume', '"Low volume')).event['finding_info']['uid']).not.toBe(first.event['finding_info']['uid']);
  });

  it('takes MailItemsAccessed records of RecordType 50 (ExchangeItemAggregated) as Exchange mailbox records', () => {
    const record = mailItemsAccessed.replace('"RecordType":2', '"RecordType":50').replace('"Workload":"Exchange",', '').replace('"MailItemsAccessed"', '"MailItemsAccessedAggregate"');
    const { mapping, problems } = mapValid(record);
    expect(problems).toEqual([]);
    expect(mapping.family).toBe('exchange');
  });

  it('leaves RecordType in unmapped, not in metadata.log_version (the version of the log, not a record type)', () => {
    const { event } = mapValid(mailItemsAccessed);
    expect(event['metadata']).not.toHaveProperty('log_version');
    expect(event['unmapped']).toMatchObject({ RecordType: 2 });
  });
});
