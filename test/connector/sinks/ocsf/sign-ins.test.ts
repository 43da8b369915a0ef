import { describe, expect, it } from 'vitest';
import { failedSignIn, mapValid, signIn } from './records.ts';

describe('sign-ins → Authentication (3002)', () => {
  it('maps a successful STS sign-in field by field', () => {
    const { event, mapping, problems } = mapValid(signIn, 'Audit.AzureActiveDirectory');
    expect(problems).toEqual([]);
    expect(mapping).toMatchObject({ family: 'sign-ins', classUid: 3002, fallback: false });
    expect(event).toMatchObject({
      class_uid: 3002, class_name: 'Authentication', category_uid: 3, activity_id: 1, activity_name: 'Logon', type_uid: 300201,
      time: Date.parse('2026-03-02T08:15:42Z'), status_id: 1, status: 'Success', status_code: '0', status_detail: 'Success',
      user: { name: 'megan.bowen@contoso.onmicrosoft.com', email_addr: 'megan.bowen@contoso.onmicrosoft.com', uid: '10032001A1B2C3D4@contoso.onmicrosoft.com', type_id: 1, type: 'User' },
      // The service is what is signed in to (the resource, ObjectId); the client app (ApplicationId) is the actor's app.
      src_endpoint: { ip: '203.0.113.24' }, service: { uid: '00000003-0000-0ff1-ce00-000000000000' }, actor: { app_uid: '89bee1f7-5e6e-4d8a-9f3d-ecd601259da7' },
      http_request: { user_agent: 'Mozilla/5.0 (Windows NT 10.0; Win64; x64)' }, auth_protocol_id: 6, auth_protocol: 'OAUTH 2.0',
      metadata: { version: '1.8.0', uid: '5a1f1c7e-7a43-4c1b-9a57-2f0b0e8b6d01', product: { name: 'Microsoft 365', vendor_name: 'Microsoft', feature: { name: 'AzureActiveDirectory' } }, log_name: 'Audit.AzureActiveDirectory', event_code: 'UserLoggedIn', tenant_uid: '2f0c3a11-6c55-4d8a-9a1e-0d7d2c1b4e77' },
      raw_data: signIn,
    });
    // What OCSF has no place for stays, whole: ResultStatus of an STS logon is only the HTTP outcome.
    expect(event['unmapped']).toMatchObject({ ResultStatus: 'Success', RecordType: 15, Actor: expect.any(Array), ExtendedProperties: expect.any(Array) });
  });

  it('reads a failed sign-in from the operation and error code, not from ResultStatus', () => {
    const { event, problems } = mapValid(failedSignIn);
    expect(problems).toEqual([]);
    expect(event).toMatchObject({
      class_uid: 3002, activity_id: 1, type_uid: 300201, status_id: 2, status: 'Failure', status_code: '50126', status_detail: 'InvalidUserNameOrPassword',
      user: { name: 'lee.gu@contoso.onmicrosoft.com' }, src_endpoint: { ip: '198.51.100.7' }, service: { uid: '00000002-0000-0ff1-ce00-000000000000' }, actor: { app_uid: '1b730954-1685-4b74-9bfd-dac224a7b894' },
      http_request: { user_agent: 'python-requests/2.31' }, metadata: { uid: '9e2d4c1b-3a5f-4e6d-8c7b-1a2b3c4d5e6f', event_code: 'UserLoginFailed' },
    });
    expect(event['unmapped']).toMatchObject({ ResultStatus: 'Success' });
  });

  it('maps the documented account logon record (RecordType 9) with its failure in ResultStatus', () => {
    const record = '{"CreationTime":"2015-06-29T20:03:19","Id":"80c76bd2-9d81-4c57-a97a-accfc3443dca","Operation":"PasswordLogonInitialAuthUsingPassword","OrganizationId":"41463f53-8812-40f4-890f-865bf6e35190","RecordType":9,"ResultStatus":"failed","UserKey":"1153977025279851686@contoso.onmicrosoft.com","UserType":0,"Workload":"AzureActiveDirectory","ClientIP":"134.170.188.221","ObjectId":"admin@contoso.onmicrosoft.com","UserId":"admin@contoso.onmicrosoft.com","AzureActiveDirectoryEventType":0,"ExtendedProperties":[{"Name":"LoginError","Value":"-2147217390;PP_E_BAD_PASSWORD;The entered and stored passwords do not match."}],"Client":"Exchange","LoginStatus":-2147217390,"UserDomain":"contoso.onmicrosoft.com"}';
    const { event, problems } = mapValid(record);
    expect(problems).toEqual([]);
    expect(event).toMatchObject({ class_uid: 3002, status_id: 2, status_code: '-2147217390', status_detail: '-2147217390;PP_E_BAD_PASSWORD;The entered and stored passwords do not match.', service: { name: 'Exchange' } });
  });
});
