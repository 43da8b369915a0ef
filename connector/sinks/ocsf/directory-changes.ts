/**
 * Azure AD user, group and role changes (RecordType 8, AzureActiveDirectory; operations end with a full stop, as
 * Microsoft writes them: "Add user.", "Add member to role.") → Account Change (3001) for what happens to an account,
 * Group Management (3006) for memberships of groups and roles (a role grant is Assign Privileges, the role being
 * the group and its name the privilege), Entity Management (3004) for updates of a user or group as an object.
 * The target comes from ObjectId and the Target list (Type 5 = UPN); group and role names and ids from
 * ModifiedProperties (Group.DisplayName, Role.DisplayName, …). A membership change that names no group or role has
 * no valid Group Management event: it is left to the generic mapping.
 */
import { classes, lookup, named, nameValue, ocsfUser, recordActor, sourceEndpoint, text, type AuditRecord, type Mapped, type OcsfClass } from './event.ts';

type Kind = 'account' | 'group' | 'role' | 'entity-user' | 'entity-group';

/** Operation (lower case, without the full stop) → class, activity and what the target is. */
const table: Readonly<Record<string, { class: OcsfClass; activityId: number; kind: Kind }>> = {
  'add user': { class: classes.accountChange, activityId: 1, kind: 'account' },
  'delete user': { class: classes.accountChange, activityId: 6, kind: 'account' },
  'hard delete user': { class: classes.accountChange, activityId: 6, kind: 'account' },
  'reset user password': { class: classes.accountChange, activityId: 4, kind: 'account' },
  'change user password': { class: classes.accountChange, activityId: 3, kind: 'account' },
  'enable account': { class: classes.accountChange, activityId: 2, kind: 'account' },
  'disable account': { class: classes.accountChange, activityId: 5, kind: 'account' },
  'update user': { class: classes.entityManagement, activityId: 3, kind: 'entity-user' },
  'restore user': { class: classes.entityManagement, activityId: 99, kind: 'entity-user' },
  'update group': { class: classes.entityManagement, activityId: 3, kind: 'entity-group' },
  'add group': { class: classes.groupManagement, activityId: 6, kind: 'group' },
  'delete group': { class: classes.groupManagement, activityId: 5, kind: 'group' },
  'add member to group': { class: classes.groupManagement, activityId: 3, kind: 'group' },
  'remove member from group': { class: classes.groupManagement, activityId: 4, kind: 'group' },
  'add member to role': { class: classes.groupManagement, activityId: 1, kind: 'role' },
  'add eligible member to role': { class: classes.groupManagement, activityId: 1, kind: 'role' },
  'remove member from role': { class: classes.groupManagement, activityId: 2, kind: 'role' },
  'remove eligible member from role': { class: classes.groupManagement, activityId: 2, kind: 'role' },
};

function entry(record: AuditRecord) {
  const operation = record['Operation'];
  return typeof operation === 'string' ? lookup(table, operation.toLowerCase().replace(/\.$/, '')) : undefined;
}

export function isDirectoryChange(record: AuditRecord): boolean {
  return entry(record) !== undefined;
}

/** The UPN among the record's targets (IdentityType 5), else its ObjectId. */
function targetName(record: AuditRecord): string | undefined {
  const targets = record['Target'];
  if (Array.isArray(targets)) {
    for (const target of targets) if (target && (target as { Type?: unknown }).Type === 5 && text((target as { ID?: unknown }).ID)) return (target as { ID: string }).ID;
  }
  return text(record['ObjectId']);
}

export function mapDirectoryChange(record: AuditRecord): Mapped | undefined {
  const found = entry(record);
  if (!found) return undefined;
  const changes = record['ModifiedProperties'];
  const target = targetName(record);
  const user = target !== undefined ? ocsfUser(target) : undefined;
  const attributes: Record<string, unknown> = { actor: recordActor(record), src_endpoint: sourceEndpoint(record['ClientIP'], record['ActorIpAddress']) };
  switch (found.kind) {
    case 'account':
      if (!user) return undefined;
      attributes['user'] = user;
      break;
    case 'entity-user':
      if (!user) return undefined;
      attributes['entity'] = { type_id: 2, type: 'User', name: user['name'], user };
      break;
    case 'entity-group': {
      const group = named(nameValue(changes, 'Group.DisplayName') ?? target, nameValue(changes, 'Group.ObjectID'));
      if (!group) return undefined;
      attributes['entity'] = { type_id: 3, type: 'Group', ...group, group };
      break;
    }
    case 'group': {
      const creates = found.activityId === 5 || found.activityId === 6;
      const group = named(nameValue(changes, 'Group.DisplayName') ?? (creates ? target : undefined), nameValue(changes, 'Group.ObjectID'));
      if (!group) return undefined;
      attributes['group'] = group;
      if (!creates && user) attributes['user'] = user;
      break;
    }
    case 'role': {
      const roleName = nameValue(changes, 'Role.DisplayName');
      const role = named(roleName, nameValue(changes, 'Role.ObjectID') ?? nameValue(changes, 'Role.TemplateId'));
      if (!role) return undefined;
      attributes['group'] = { ...role, type: 'Azure AD directory role' };
      if (roleName !== undefined) attributes['privileges'] = [roleName];
      if (user) attributes['user'] = user;
      break;
    }
  }
  return { class: found.class, activityId: found.activityId, attributes, consumed: ['UserId', 'UserKey', 'UserType', 'ClientIP'] };
}
