import { describe, expect, it } from 'vitest';
import { mapApiActivity } from '../../../../connector/sinks/ocsf/api-activity.ts';
import { mapValid } from './records.ts';

const record = (operation: string) => `{"CreationTime":"2026-03-02T15:30:00","Id":"22222222-3333-4444-8555-666666666666","Operation":${JSON.stringify(operation)},"OrganizationId":"2f0c3a11-6c55-4d8a-9a1e-0d7d2c1b4e77","RecordType":36,"UserKey":"10032001A1B2C3D4","UserType":0,"Version":1,"Workload":"SharePoint","ClientIP":"203.0.113.24","UserId":"megan.bowen@contoso.onmicrosoft.com"}`;

describe('the generic API Activity mapping reads the activity from whole words of the operation', () => {
  it.each([
    // What the operation says happened (a past participle at its end) wins over a leading noun that is also a verb.
    ['ListCreated', 1], ['ListItemDeleted', 4], ['ListUpdated', 3], ['ListViewed', 2], ['NewsFeedViewed', 2],
    ['TeamCreated', 1], ['MemberAdded', 1], ['ChannelAdded', 1], ['MemberRemoved', 4], ['ListColumnChanged', 3], ['PageViewed', 2],
    ['SiteModified', 3], ['ReportAccessed', 2], ['MessageRead', 2], ['SensitivityLabelApplied', 99], ['MessageSent', 99],
    // A leading verb counts only as a whole word: followed by an upper-case letter, "-", a space or the end.
    ['AddressListApplied', 99], ['Newsletter', 99], ['Listing', 99], ['Settings', 99], ['Getaway', 99], ['Thread', 99],
    ['Add member to role.', 1], ['Set company information.', 3], ['Remove-Item', 4], ['GetMailbox', 2], ['HardDelete', 4], ['Update', 3],
    ['SearchQueryPerformed', 2],
  ])('%s → activity %i', (operation, activityId) => {
    expect(mapApiActivity(JSON.parse(record(operation))).activityId).toBe(activityId);
    const { event, problems } = mapValid(record(operation));
    expect(problems).toEqual([]);
    expect(event['activity_id']).toBe(activityId);
  });
});
