import { describe, expect, it } from 'vitest';
import { classes, classUid } from '../../connector/sinks/ocsf/event.ts';
import { ocsfDataFile, readOcsfData } from './ocsf-data.ts';
import { OcsfSchema } from './ocsf-schema.ts';
import { extractOcsfData, isSchemaSource, schemaSourceDirectory } from './schema-source.ts';

const schema = new OcsfSchema();

/** A minimal valid API Activity event, to break one rule at a time. */
function apiActivity(): Record<string, any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  return {
    class_uid: 6003, class_name: 'API Activity', category_uid: 6, category_name: 'Application Activity',
    activity_id: 2, activity_name: 'Read', type_uid: 600302, type_name: 'API Activity: Read', severity_id: 1, severity: 'Informational',
    time: 1_700_000_000_000, metadata: { version: '1.8.0', product: { name: 'Microsoft 365' }, profiles: ['cloud'] }, cloud: { provider: 'Microsoft' },
    actor: { user: { name: 'megan.bowen@contoso.onmicrosoft.com' } }, api: { operation: 'MailItemsAccessed' }, src_endpoint: { ip: '20.1.2.3' },
  };
}

describe('the committed OCSF data', () => {
  it('is what the OCSF schema source gives for the classes the mappings emit (skipped unless OCSF_SCHEMA_DIR names one)', (context) => {
    const dir = schemaSourceDirectory();
    if (dir === undefined) return context.skip(`OCSF_SCHEMA_DIR is not set: set it to an ocsf-schema checkout to compare ${ocsfDataFile} with it`);
    if (!isSchemaSource(dir)) throw new Error(`OCSF_SCHEMA_DIR=${dir} is no OCSF schema source (no dictionary.json and version.json there)`);
    const extracted = extractOcsfData(dir, Object.values(classes).map((ocsfClass) => ocsfClass.name));
    expect(readOcsfData(), `${ocsfDataFile} differs from the schema source at ${dir}: run npm run ocsf:extract`).toEqual(extracted);
  });
});

describe('the OCSF validator over the committed OCSF data', () => {
  it('holds OCSF 1.8.0 classes resolved through their extends chain, profiles and dictionary', () => {
    expect(schema.version).toBe('1.8.0');
    const authentication = schema.class('authentication');
    expect(authentication.categoryUid * 1000 + authentication.uid).toBe(3002);
    expect(authentication.attributes.get('user')).toMatchObject({ type: 'user', requirement: 'required' }); // its own
    expect(authentication.attributes.get('src_endpoint')).toMatchObject({ type: 'network_endpoint' }); // from iam
    expect(authentication.attributes.get('time')).toMatchObject({ type: 'timestamp_t', requirement: 'required' }); // from base_event
    expect(authentication.attributes.get('cloud')).toMatchObject({ profile: 'cloud', requirement: 'required' }); // a profile's
    expect(authentication.attributes.get('actor')?.profile).toBeUndefined(); // iam takes actor out of the host profile
  });

  it('accepts a valid event', () => {
    expect(schema.validate(apiActivity())).toEqual([]);
  });

  it.each([
    ['a required attribute missing', (e: Record<string, any>) => { delete e.actor; }, 'actor: required by api_activity, missing'], // eslint-disable-line @typescript-eslint/no-explicit-any
    ['a required attribute of an object missing', (e: Record<string, any>) => { delete e.api.operation; }, 'api.operation: required by api, missing'], // eslint-disable-line @typescript-eslint/no-explicit-any
    ['type_uid not class_uid x 100 + activity_id', (e: Record<string, any>) => { e.type_uid = 600303; }, 'type_uid: 600303, expected 600302'], // eslint-disable-line @typescript-eslint/no-explicit-any
    ['an activity id the class does not have', (e: Record<string, any>) => { e.activity_id = 7; e.type_uid = 600307; }, 'activity_id: 7 is not one of'], // eslint-disable-line @typescript-eslint/no-explicit-any
    ['a caption that is not the enum id\'s', (e: Record<string, any>) => { e.severity = 'Low'; }, 'severity: "Low", the caption of severity_id 1 is "Informational"'], // eslint-disable-line @typescript-eslint/no-explicit-any
    ['Other without its source value', (e: Record<string, any>) => { e.actor.user.type_id = 99; }, 'actor.user.type: required with type_id 99'], // eslint-disable-line @typescript-eslint/no-explicit-any
    ['a wrong type', (e: Record<string, any>) => { e.time = '2026-01-01'; }, 'time: expected an integer'], // eslint-disable-line @typescript-eslint/no-explicit-any
    ['a string outside its type\'s pattern', (e: Record<string, any>) => { e.src_endpoint.ip = '20.1.2.3:443'; }, 'src_endpoint.ip: "20.1.2.3:443" is not a valid IP Address'], // eslint-disable-line @typescript-eslint/no-explicit-any
    ['an attribute the class does not have', (e: Record<string, any>) => { e.file = { name: 'a', type_id: 1 }; }, 'file: not an attribute of api_activity'], // eslint-disable-line @typescript-eslint/no-explicit-any
    ['a profile\'s attribute without the profile', (e: Record<string, any>) => { e.metadata.profiles = []; }, 'cloud: not an attribute of api_activity without the cloud profile'], // eslint-disable-line @typescript-eslint/no-explicit-any
    ['an at_least_one constraint broken', (e: Record<string, any>) => { e.src_endpoint = { port: 443 }; }, 'src_endpoint: network_endpoint needs at least one of'], // eslint-disable-line @typescript-eslint/no-explicit-any
    ['the wrong schema version', (e: Record<string, any>) => { e.metadata.version = '1.7.0'; }, 'metadata.version: "1.7.0", expected "1.8.0"'], // eslint-disable-line @typescript-eslint/no-explicit-any
    ['a class name that is not the class\'s', (e: Record<string, any>) => { e.class_name = 'Web Resources Activity'; }, 'class_name: "Web Resources Activity"'], // eslint-disable-line @typescript-eslint/no-explicit-any
  ])('rejects %s', (_title, breakIt, problem) => {
    const event = apiActivity();
    breakIt(event);
    expect(schema.validate(event).join('\n')).toContain(problem);
  });

  it('agrees with the class table the mappings use (uids, captions, activity captions)', () => {
    for (const ocsfClass of Object.values(classes)) {
      const resolved = schema.class(ocsfClass.name);
      expect(classUid(ocsfClass)).toBe(resolved.categoryUid * 1000 + resolved.uid);
      expect([ocsfClass.caption, ocsfClass.categoryCaption]).toEqual([resolved.caption, resolved.categoryCaption]);
      const activities = resolved.attributes.get('activity_id')!.enum!;
      for (const [id, caption] of Object.entries(ocsfClass.activities)) expect(activities[id], `${ocsfClass.name} activity ${id}`).toBe(caption);
    }
  });
});
