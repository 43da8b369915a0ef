/**
 * A record whose shape is not the documented one (a member null, of another type, an empty list or object) must never
 * stop the OCSF transform: every family maps it or leaves it to the generic mapping, and the event is always valid.
 * Each realistic record is mutated at every member, nested ones included, into each malformed shape.
 */
import { describe, expect, it } from 'vitest';
import { families, mapRecordText } from '../../../../connector/sinks/ocsf/registry.ts';
import { OcsfTransform, ocsfTransformComponent } from '../../../../connector/sinks/ocsf/ocsf-sink.ts';
import { ConnectorMetrics } from '../../../../connector/report/metrics.ts';
import { Telemetry } from '../../../../connector/observe/telemetry.ts';
import { alert, dlpMatch, failedSignIn, fileDownload, mailItemsAccessed, mapValid, roleGrant, schema, signIn } from './records.ts';

const cmdlet = '{"CreationTime":"2026-03-02T14:00:00","Id":"11111111-2222-4333-8444-555555555555","Operation":"Set-Mailbox","OrganizationId":"2f0c3a11-6c55-4d8a-9a1e-0d7d2c1b4e77","RecordType":1,"ResultStatus":"True","UserKey":"admin@contoso.onmicrosoft.com","UserType":2,"Version":1,"Workload":"Exchange","ObjectId":"megan.bowen","UserId":"admin@contoso.onmicrosoft.com","Parameters":[{"Name":"Identity","Value":"megan.bowen"}]}';
const groupAdd = roleGrant.replace('"Add member to role."', '"Add member to group."').replace('"Role.DisplayName"', '"Group.DisplayName"').replace('"Role.ObjectID"', '"Group.ObjectID"');
const sharePointDlp = dlpMatch.replace(/"ExchangeMetaData":\{[^}]*\}/, '"SharePointMetaData":{"FileName":"cards.xlsx","FilePathUrl":"https://contoso.sharepoint.com/sites/finance/Shared Documents/cards.xlsx"}');

const records: Record<string, string> = { dlp: dlpMatch, 'dlp-sharepoint': sharePointDlp, alert, 'role grant': roleGrant, 'group add': groupAdd, 'sign-in': signIn, 'failed sign-in': failedSignIn, 'file download': fileDownload, mailbox: mailItemsAccessed, cmdlet };

/** The shapes a member takes when it is not what the schema documents. */
const shapes: unknown[] = [null, 0, -1.5, true, '', 'x', 'constructor', 'toString', [], {}, [null], [{}], ['x'], [[]], { x: null }];

type Json = unknown;
type Path = Array<string | number>;

/** Every member path of a JSON value, nested objects and arrays included (to a depth that covers every record). */
function paths(value: Json, prefix: Path = [], depth = 6): Path[] {
  if (depth === 0 || value === null || typeof value !== 'object') return [];
  const keys: Array<string | number> = Array.isArray(value) ? value.map((_item, index) => index) : Object.keys(value);
  return keys.flatMap((key) => [[...prefix, key], ...paths((value as Record<string | number, Json>)[key], [...prefix, key], depth - 1)]);
}

function replaced(root: Json, path: Path, shape: unknown): Json {
  const copy = structuredClone(root) as Record<string | number, Json>;
  let parent = copy;
  for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, Json>;
  parent[path[path.length - 1]!] = structuredClone(shape);
  return copy;
}

describe('records of an unexpected shape map to a valid event, never an exception', () => {
  it.each(Object.entries(records))('every member of the %s record, in every malformed shape', (_name, text) => {
    const record = JSON.parse(text) as Json;
    let cases = 0;
    const failures: string[] = [];
    for (const path of paths(record)) {
      for (const shape of shapes) {
        const mutated = JSON.stringify(replaced(record, path, shape));
        const where = `${path.join('.')} = ${JSON.stringify(shape)}`;
        cases += 1;
        try {
          const { mapping, problems } = mapValid(mutated);
          if (problems.length > 0) failures.push(`${where}: ${problems.join('; ')}`);
          if (mapping.mappingError) failures.push(`${where}: ${mapping.error ?? ''}`);
        } catch (error) {
          failures.push(`${where}: threw ${String(error)}`);
        }
      }
    }
    expect(failures).toEqual([]);
    expect(cases).toBeGreaterThan(100);
  });

  it.each([
    ['PolicyDetails:[null]', '"PolicyDetails":[null]'],
    ['Rules:{}', '"PolicyDetails":[{"PolicyId":"p","PolicyName":"n","Rules":{}}]'],
    ['Rules:[null]', '"PolicyDetails":[{"PolicyId":"p","PolicyName":"n","Rules":[null]}]'],
    ['SensitiveInformation:{}', '"PolicyDetails":[{"PolicyId":"p","Rules":[{"RuleId":"r","ConditionsMatched":{"SensitiveInformation":{}}}]}]'],
    ['SensitiveInformation:[null]', '"PolicyDetails":[{"PolicyId":"p","Rules":[{"RuleId":"r","ConditionsMatched":{"SensitiveInformation":[null]}}]}]'],
  ])('maps a DLP match with %s as a Data Security Finding', (_title, policyDetails) => {
    const text = dlpMatch.replace(/"PolicyDetails":\[.*\],"SensitiveInfoDetectionIsIncluded"/, `${policyDetails},"SensitiveInfoDetectionIsIncluded"`);
    expect(text).not.toBe(dlpMatch);
    const { event, mapping, problems } = mapValid(text);
    expect(problems).toEqual([]);
    expect(mapping).toMatchObject({ family: 'dlp', classUid: 2006, mappingError: false });
    expect(event['finding_info']['uid']).toBe('8a7b6c5d-4e3f-4a2b-9c1d-0e9f8a7b6c5d');
  });

  it('falls back to API Activity when a family\'s mapping throws, and counts it as a mapping error', () => {
    const throwing = families.map((family) => (family.name === 'dlp' ? { ...family, map: () => { throw new TypeError("Cannot read properties of null (reading 'Rules')"); } } : family));
    const mapping = mapRecordText(dlpMatch, { families: throwing });
    const event = JSON.parse(mapping.json) as Record<string, unknown>;
    expect(schema.validate(event)).toEqual([]);
    expect(mapping).toMatchObject({ family: 'generic', classUid: 6003, fallback: true, mappingError: true, error: "dlp: TypeError: Cannot read properties of null (reading 'Rules')" });
    expect(event['raw_data']).toBe(dlpMatch);
  });

  it('counts mapping errors beside fallbacks in the transform and in /metrics', async () => {
    const telemetry = new Telemetry();
    const throwing = families.map((family) => (family.name === 'dlp' ? { ...family, map: () => { throw new TypeError('boom'); } } : family));
    const transform = new OcsfTransform({ telemetry, families: throwing });
    const batch = { contentType: 'DLP.All' as const, records: [dlpMatch, signIn].map((text) => ({ id: JSON.parse(text).Id, creationTime: JSON.parse(text).CreationTime, bytes: Buffer.from(text) })) };
    const mapped = transform.apply(batch);
    expect(mapped.records).toHaveLength(2);
    const counters = telemetry.snapshot().find((c) => c.name === ocsfTransformComponent)!;
    expect(counters.tallies).toMatchObject({ fallback: 1, 'mapping-error': 1 });
    const metrics = new ConnectorMetrics({ defaultTenant: 't', tenants: () => [], telemetry, sinkNames: [] });
    const text = await metrics.registry.metrics();
    expect(text).toContain('o365_ocsf_mapping_errors_total 1');
    expect(text).toContain('o365_ocsf_fallback_total 1');
  });
});
