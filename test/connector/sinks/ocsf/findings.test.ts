import { describe, expect, it } from 'vitest';
import { alert, dlpMatch, mapValid } from './records.ts';

describe('DLP and security alerts → findings', () => {
  it('maps a DLP match field by field to a Data Security Finding (2006)', () => {
    const { event, mapping, problems } = mapValid(dlpMatch, 'DLP.All');
    expect(problems).toEqual([]);
    expect(mapping).toMatchObject({ family: 'dlp', classUid: 2006 });
    expect(event).toMatchObject({
      class_uid: 2006, class_name: 'Data Security Finding', category_uid: 2, activity_id: 1, activity_name: 'Create', type_uid: 200601,
      severity_id: 4, severity: 'High', status_id: 1, status: 'New', is_alert: true,
      finding_info: { uid: '8a7b6c5d-4e3f-4a2b-9c1d-0e9f8a7b6c5d', title: 'U.S. Financial Data: High volume of content detected', types: ['Data Loss Prevention'], analytic: { uid: 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d', name: 'High volume of content detected', type_id: 1 } },
      data_security: { policy: { name: 'U.S. Financial Data', uid: 'c3e4b2c1-5f6a-4b7c-8d9e-0f1a2b3c4d5e' }, detection_pattern: 'Credit Card Number, U.S. Bank Account Number', detection_system_id: 10, data_lifecycle_state_id: 2 },
      actor: { user: { name: 'megan.bowen@contoso.onmicrosoft.com', uid: 'DlpAgent' } },
      metadata: { uid: 'b4c5d6e7-f8a9-4b0c-9d1e-2f3a4b5c6d7e', log_name: 'DLP.All' },
    });
    expect(event['unmapped']).toMatchObject({ PolicyDetails: expect.any(Array), ExchangeMetaData: { Subject: 'Card list' }, SensitiveInfoDetectionIsIncluded: false });
  });

  it('closes the finding on DlpRuleUndo and names the SharePoint file', () => {
    const record = dlpMatch.replace('"DlpRuleMatch"', '"DlpRuleUndo"').replace(/"ExchangeMetaData":\{[^}]*\}/, '"SharePointMetaData":{"FileName":"cards.xlsx","FilePathUrl":"https://contoso.sharepoint.com/sites/finance/Shared Documents/cards.xlsx"}');
    const { event, problems } = mapValid(record);
    expect(problems).toEqual([]);
    expect(event).toMatchObject({ activity_id: 3, status_id: 4, file: { name: 'cards.xlsx', type_id: 1 }, data_security: { data_lifecycle_state_id: 1 } });
  });

  it('maps a Security & Compliance alert to a Detection Finding (2004)', () => {
    const { event, mapping, problems } = mapValid(alert);
    expect(problems).toEqual([]);
    expect(mapping).toMatchObject({ family: 'alerts', classUid: 2004 });
    expect(event).toMatchObject({
      class_uid: 2004, activity_id: 1, type_uid: 200401, severity_id: 3, severity: 'Medium', status_id: 1, status: 'New', is_alert: true,
      finding_info: { uid: '0d1e2f3a-4b5c-4d6e-8f7a-9b0c1d2e3f4a', title: 'Suspicious email sending patterns detected', types: ['ThreatManagement'], analytic: { uid: '5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9' } },
    });
    expect(event['unmapped']).toMatchObject({ Data: expect.any(String), AlertType: 'System', UserId: 'SecurityComplianceAlerts' });
  });
});

describe('alerts with an address, and records whose CreationTime cannot be read', () => {
  const withIp = (ip: string) => alert.replace('"Status":"Active"}', `"Status":"Active","ClientIP":"${ip}"}`);

  it.each(['203.0.113.24', '[2001:db8::24]:51234', '198.51.100.7:443'])('an alert with ClientIP %s is a valid Detection Finding: the address is its evidence', (ip) => {
    const { event, problems } = mapValid(withIp(ip));
    expect(problems).toEqual([]);
    expect(event['src_endpoint']).toBeUndefined();
    expect(event['evidences']).toEqual([{ src_endpoint: expect.objectContaining({ ip: expect.any(String) }) }]);
    expect(event['unmapped']?.['ClientIP']).toBeUndefined();
  });

  it.each(['2026-02-30T12:05:00', 'not a time', '2026-03-02T24:00:00'])('CreationTime %s is not read as another time: the event says its time is the processing time, and keeps CreationTime', (creationTime) => {
    const before = Date.now();
    const { event, problems } = mapValid(alert.replace('"CreationTime":"2026-03-02T12:05:00"', `"CreationTime":"${creationTime}"`));
    expect(problems).toEqual([]);
    expect(event['time']).toBeGreaterThanOrEqual(before);
    expect(event['metadata']).toMatchObject({ processed_time: event['time'], labels: ['time: CreationTime unreadable, processing time used'], original_time: creationTime });
    expect(event['unmapped']).toMatchObject({ CreationTime: creationTime });
  });

  it('a readable CreationTime carries no such mark', () => {
    const { event } = mapValid(alert);
    expect(event['time']).toBe(Date.parse('2026-03-02T12:05:00Z'));
    expect(event['metadata']['labels']).toBeUndefined();
    expect(event['unmapped']['CreationTime']).toBeUndefined();
  });
});
