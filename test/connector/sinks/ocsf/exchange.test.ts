import { describe, expect, it } from 'vitest';
import { mailItemsAccessed, mapValid } from './records.ts';

describe('Exchange mailbox and admin records → API Activity (6003)', () => {
  it('maps MailItemsAccessed as a Read of the mailbox, with the client address and port', () => {
    const { event, mapping, problems } = mapValid(mailItemsAccessed, 'Audit.Exchange');
    expect(problems).toEqual([]);
    expect(mapping).toMatchObject({ family: 'exchange', classUid: 6003, fallback: false });
    expect(event).toMatchObject({
      activity_id: 2, activity_name: 'Read', type_uid: 600302, api: { operation: 'MailItemsAccessed', service: { name: 'Exchange Online mailbox' } },
      src_endpoint: { ip: '2001:db8::24', port: 51234 }, resources: [{ type: 'Mailbox', name: 'megan.bowen@contoso.onmicrosoft.com', uid: '6c5d4e3f-2a1b-4c0d-9e8f-7a6b5c4d3e2f' }],
      status_id: 1,
    });
    expect(event['unmapped']).toMatchObject({ Folders: expect.any(Array), OperationProperties: expect.any(Array) });
  });

  it.each([['Set-Mailbox', 3], ['New-InboxRule', 1], ['Remove-MailboxPermission', 4], ['Get-Mailbox', 2], ['Install-DefaultSharingPolicy', 1]])('reads the activity of the cmdlet %s from its verb', (cmdlet, activityId) => {
    const record = `{"CreationTime":"2026-03-02T14:00:00","Id":"11111111-2222-4333-8444-555555555555","Operation":"${cmdlet}","OrganizationId":"2f0c3a11-6c55-4d8a-9a1e-0d7d2c1b4e77","RecordType":1,"ResultStatus":"True","UserKey":"admin@contoso.onmicrosoft.com","UserType":2,"Version":1,"Workload":"Exchange","ObjectId":"megan.bowen","UserId":"admin@contoso.onmicrosoft.com","Parameters":[{"Name":"Identity","Value":"megan.bowen"}]}`;
    const { event, problems } = mapValid(record);
    expect(problems).toEqual([]);
    expect(event).toMatchObject({ class_uid: 6003, activity_id: activityId, status_id: 1, actor: { user: { type_id: 2, type: 'Admin' } }, resources: [{ name: 'megan.bowen', type: 'Exchange object' }] });
    expect(event['unmapped']).toMatchObject({ Parameters: [{ Name: 'Identity', Value: 'megan.bowen' }] });
  });
});
