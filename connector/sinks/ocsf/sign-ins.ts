/**
 * Sign-ins → Authentication (3002), activity Logon. Microsoft's Azure AD STS logon records (RecordType 15,
 * AzureActiveDirectoryStsLogon: UserLoggedIn, UserLoginFailed) and the older account logon records (RecordType 9).
 * The outcome is not ResultStatus, which for STS logons says only that the HTTP exchange worked (Microsoft's common
 * schema says so): a logon failed when the operation is UserLoginFailed, or its ErrorCode is not 0, or it carries a
 * LogonError; RecordType 9 says it in ResultStatus and LoginStatus. The service signed in to is the resource (ObjectId),
 * the client application that asked for the token (ApplicationId) is `actor.app_uid`.
 */
import { classes, nameValue, ocsfUser, sourceEndpoint, text, type AuditRecord, type Mapped } from './event.ts';

export const signInOperations = new Set(['UserLoggedIn', 'UserLoginFailed', 'PasswordLogonInitialAuthUsingPassword']);

/** The request types Azure AD writes in ExtendedProperties (RequestType) that name a protocol OCSF knows. */
const protocols: ReadonlyArray<[RegExp, number, string]> = [[/^OAuth2/i, 6, 'OAUTH 2.0'], [/^SAML/i, 5, 'SAML'], [/^(OpenId|OIDC)/i, 4, 'OpenID']];

export function isSignIn(record: AuditRecord): boolean {
  const type = record['RecordType'];
  return type === 15 || type === 9 || signInOperations.has(record['Operation'] as string);
}

export function mapSignIn(record: AuditRecord): Mapped {
  const extended = record['ExtendedProperties'];
  const errorCode = record['ErrorCode'] === undefined || record['ErrorCode'] === null ? undefined : String(record['ErrorCode']);
  const logonError = text(record['LogonError']) ?? nameValue(extended, 'LoginError');
  const failed = record['Operation'] === 'UserLoginFailed' || (errorCode !== undefined && errorCode !== '0') || logonError !== undefined
    || (record['RecordType'] === 9 && /^fail/i.test(String(record['ResultStatus'] ?? '')));
  const attributes: Record<string, unknown> = {
    user: ocsfUser(record['UserId'] ?? record['UserKey'], record['UserKey'], record['UserType']),
    src_endpoint: sourceEndpoint(record['ClientIP'], record['ActorIpAddress']),
    // `service` is what the user signs in to: the resource (ObjectId). The client app that asked (ApplicationId) is the actor's app.
    service: { uid: text(record['ObjectId']) ?? 'Unknown', ...(text(record['Client']) ? { name: record['Client'] } : {}) },
    status_id: failed ? 2 : 1,
    status: failed ? 'Failure' : 'Success',
  };
  const clientApp = text(record['ApplicationId']);
  if (clientApp !== undefined) attributes['actor'] = { app_uid: clientApp };
  const detail = logonError ?? nameValue(extended, 'ResultStatusDetail');
  if (detail !== undefined) attributes['status_detail'] = detail;
  if (errorCode !== undefined) attributes['status_code'] = errorCode;
  else if (typeof record['LoginStatus'] === 'number') attributes['status_code'] = String(record['LoginStatus']);
  const userAgent = nameValue(extended, 'UserAgent');
  if (userAgent !== undefined) attributes['http_request'] = { user_agent: userAgent };
  const requestType = nameValue(extended, 'RequestType');
  if (requestType !== undefined && requestType !== '') {
    const protocol = protocols.find(([pattern]) => pattern.test(requestType));
    attributes['auth_protocol_id'] = protocol ? protocol[1] : 99;
    attributes['auth_protocol'] = protocol ? protocol[2] : requestType;
  }
  return {
    class: classes.authentication,
    activityId: 1,
    attributes,
    consumed: ['UserId', 'UserKey', 'UserType', 'ClientIP', 'ObjectId', ...(clientApp !== undefined ? ['ApplicationId'] : []), 'ErrorCode', 'LogonError', 'LoginStatus', 'Client'],
  };
}
