import { describe, expect, it } from 'vitest';
import { groupRemoval, mapValid, roleGrant, roleRemoval } from './records.ts';

const change = (operation: string, extra = '') => roleGrant.replace('"Add member to role."', JSON.stringify(operation)).replace('"ModifiedProperties":[{', `${extra}"ModifiedProperties":[{`);

describe('Azure AD user, group and role changes → Account Change, Group Management, Entity Management', () => {
  it('maps a role grant field by field: the role is the group and its name the privilege', () => {
    const { event, mapping, problems } = mapValid(roleGrant, 'Audit.AzureActiveDirectory');
    expect(problems).toEqual([]);
    expect(mapping).toMatchObject({ family: 'directory-changes', classUid: 3006 });
    expect(event).toMatchObject({
      class_uid: 3006, class_name: 'Group Management', activity_id: 1, activity_name: 'Assign Privileges', type_uid: 300601,
      group: { name: 'Global Administrator', uid: '62e90394-69f5-4237-9190-012177145e10', type: 'Azure AD directory role' },
      privileges: ['Global Administrator'],
      user: { name: 'diego.siciliani@contoso.onmicrosoft.com' },
      actor: { user: { name: 'admin@contoso.onmicrosoft.com', uid: '10032001C0FFEE00@contoso.onmicrosoft.com' } },
      status_id: 1, time: Date.parse('2026-03-02T10:22:31Z'), metadata: { uid: 'e7a1b2c3-d4e5-4f60-8a7b-9c0d1e2f3a4b' },
    });
    expect(event['unmapped']).toMatchObject({ ModifiedProperties: expect.any(Array), Target: expect.any(Array) });
  });

  it.each([
    ['Add user.', 3001, 1], ['Delete user.', 3001, 6], ['Reset user password.', 3001, 4], ['Change user password.', 3001, 3],
    ['Update user.', 3004, 3], ['Remove member from role.', 3006, 2],
  ])('maps %s to class %i activity %i', (operation, classUid, activityId) => {
    const { event, problems } = mapValid(change(operation));
    expect(problems).toEqual([]);
    expect(event).toMatchObject({ class_uid: classUid, activity_id: activityId });
  });

  it('maps group membership with the group from ModifiedProperties', () => {
    const record = roleGrant.replace('"Add member to role."', '"Add member to group."').replace('"Role.DisplayName"', '"Group.DisplayName"').replace('"Role.ObjectID"', '"Group.ObjectID"');
    const { event, problems } = mapValid(record);
    expect(problems).toEqual([]);
    expect(event).toMatchObject({ class_uid: 3006, activity_id: 3, group: { name: 'Global Administrator' }, user: { name: 'diego.siciliani@contoso.onmicrosoft.com' } });
  });

  it('leaves a role grant that names no role to the generic mapping (still a valid event)', () => {
    const record = roleGrant.replace(/"ModifiedProperties":\[[^\]]*\]/, '"ModifiedProperties":[]');
    const { event, mapping, problems } = mapValid(record);
    expect(problems).toEqual([]);
    expect(mapping).toMatchObject({ family: 'generic', fallback: true, classUid: 6003 });
    expect(event).toMatchObject({ api: { operation: 'Add member to role.', service: { name: 'AzureActiveDirectory' } }, activity_id: 1 });
  });

  it('names the role of a removal from OldValue (Azure AD leaves NewValue empty)', () => {
    const { event, mapping, problems } = mapValid(roleRemoval, 'Audit.AzureActiveDirectory');
    expect(problems).toEqual([]);
    expect(mapping).toMatchObject({ family: 'directory-changes', classUid: 3006 });
    expect(event).toMatchObject({
      activity_id: 2, activity_name: 'Revoke Privileges',
      group: { name: 'Global Administrator', uid: '62e90394-69f5-4237-9190-012177145e10', type: 'Azure AD directory role' },
      privileges: ['Global Administrator'], user: { name: 'diego.siciliani@contoso.onmicrosoft.com' },
    });
  });

  it('names the group of a membership removal from OldValue', () => {
    const { event, mapping, problems } = mapValid(groupRemoval, 'Audit.AzureActiveDirectory');
    expect(problems).toEqual([]);
    expect(mapping).toMatchObject({ family: 'directory-changes', classUid: 3006 });
    expect(event).toMatchObject({ activity_id: 4, activity_name: 'Remove User', group: { name: 'Finance Approvers', uid: 'b3c2d1e0-9f8a-4b7c-8d6e-5f4a3b2c1d0e' }, user: { name: 'diego.siciliani@contoso.onmicrosoft.com' } });
  });
});
