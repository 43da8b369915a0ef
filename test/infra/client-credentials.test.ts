import { beforeAll, describe, expect, it } from 'vitest';
import * as pulumi from '@pulumi/pulumi';
import { runProgram, type ProgramRun } from './harness.ts';
import { selfSignedCertificate } from './certificates.ts';
import { unwrapSecret, valueOf } from './mocks.ts';

const passwordType = 'azuread:index/applicationPassword:ApplicationPassword';
const certificateType = 'azuread:index/applicationCertificate:ApplicationCertificate';
const day = 86_400_000;

interface Plan {
  created: string[];
  deleted: string[];
  replaced: string[];
  unchanged: string[];
  /** The inputs the engine would send: for a resource with prior state, ignored properties keep their old value. */
  effective: Map<string, Record<string, any>>;
}

/**
 * What the engine would do to the passwords going from one run to the next: same name = same resource; inputs that
 * differ outside the resource's ignoreChanges mean a replacement (every ApplicationPassword input forces a new one),
 * and ignoreChanges keeps the old value of an ignored property even in the replacement (Pulumi's documented rule).
 */
function passwordPlan(before: ProgramRun, after: ProgramRun): Plan {
  const byName = (run: ProgramRun) => new Map(run.ofType(passwordType).map((password) => [password.name, password.inputs]));
  const old = byName(before);
  const now = byName(after);
  const plan: Plan = { created: [], deleted: [], replaced: [], unchanged: [], effective: new Map() };
  for (const [name, inputs] of now) {
    const previous = old.get(name);
    if (!previous) {
      plan.created.push(name);
      plan.effective.set(name, inputs);
      continue;
    }
    const ignored = after.ignoreChanges.get(`${passwordType}::${name}`) ?? [];
    plan.effective.set(name, { ...inputs, ...Object.fromEntries(ignored.map((key) => [key, previous[key]])) });
    const changed = Object.keys({ ...previous, ...inputs }).filter((key) => !ignored.includes(key) && JSON.stringify(previous[key]) !== JSON.stringify(inputs[key]));
    (changed.length > 0 ? plan.replaced : plan.unchanged).push(name);
  }
  plan.deleted = [...old.keys()].filter((name) => !now.has(name));
  return plan;
}

describe('client credentials', () => {
  it('creates one secret with the configured lifetime on a new stack and hands it out as a Pulumi secret', async () => {
    const run = await runProgram({ secretLifetimeDays: '30' });
    const passwords = run.ofType(passwordType);
    expect(passwords.map((password) => password.inputs)).toEqual([{
      applicationId: '/applications/object-of-o365-connector',
      displayName: 'o365-connector generation 0',
      endDate: '2026-12-25T00:00:00Z',
    }]);
    expect(await valueOf(run.outputs.clientSecret!)).toBe('value-of-o365-connector-secret-0');
    expect(await pulumi.isSecret(run.outputs.clientSecret!)).toBe(true);
    expect(await valueOf(run.outputs.clientSecretExpiry!)).toBe('2026-12-25T00:00:00Z');
  });

  it('defaults to a 180-day secret', async () => {
    const [password] = (await runProgram()).ofType(passwordType);
    expect(password!.inputs.endDate).toBe('2027-05-24T00:00:00Z');
  });

  it('leaves both live secrets alone on a later `pulumi up` without a rotation, however much time has passed', async () => {
    const before = await runProgram({ secretRotation: '3' });
    const later = await runProgram({ secretRotation: '3' }, new Date(before.ofType(passwordType)[0]!.inputs.endDate));
    expect(passwordPlan(before, later)).toMatchObject({ created: [], deleted: [], replaced: [], unchanged: ['o365-connector-secret-2', 'o365-connector-secret-3'] });
  });

  it.each([0, 1, 7])('rotating from generation %i creates exactly one secret, keeps the one connectors hold, retires only the older one', async (generation) => {
    const before = await runProgram({ secretRotation: String(generation) });
    const held = await valueOf(before.outputs.clientSecret!);
    const after = await runProgram({ secretRotation: String(generation + 1) }, new Date(Date.parse('2026-11-25T00:00:00Z') + 90 * day));

    const plan = passwordPlan(before, after);
    expect(plan).toMatchObject({
      created: [`o365-connector-secret-${generation + 1}`],
      deleted: generation === 0 ? [] : [`o365-connector-secret-${generation - 1}`],
      replaced: [],
      unchanged: [`o365-connector-secret-${generation}`],
    });
    // The secret connectors hold is still registered, unchanged; the outputs now hand out the new one.
    expect(after.ofType(passwordType).map((password) => `value-of-${password.name}`)).toContain(held);
    expect(await valueOf(after.outputs.clientSecret!)).toBe(`value-of-o365-connector-secret-${generation + 1}`);
    expect(await valueOf(after.outputs.clientSecret!)).not.toBe(held);
    // The new secret counts its lifetime from the rotation, not from when the stack was created.
    expect(plan.effective.get(`o365-connector-secret-${generation + 1}`)!.endDate).toBe('2027-08-22T00:00:00Z');
    expect(await pulumi.isSecret(after.outputs.clientSecret!)).toBe(true);
  });

  describe('certificate credential', () => {
    let certPem: string;
    beforeAll(async () => {
      ({ certPem } = await selfSignedCertificate({ notBefore: new Date('2026-01-01T00:00:00Z'), notAfter: new Date('2028-01-01T00:00:00Z') }));
    });

    it('registers the certificate beside the secret with credential both', async () => {
      const run = await runProgram({ credential: 'both', certificatePem: certPem });
      const [certificate] = run.ofType(certificateType);
      expect(certificate!.inputs).toMatchObject({ type: 'AsymmetricX509Cert', encoding: 'pem', applicationId: '/applications/object-of-o365-connector' });
      expect(unwrapSecret(certificate!.inputs.value)).toBe(certPem.trim());
      expect(run.ofType(passwordType)).toHaveLength(1);
      expect(await valueOf(run.outputs.certificateKeyId!)).toBe('key-of-o365-connector-certificate');
      expect(run.outputs.clientSecret).toBeDefined();
    });

    it('registers only the certificate, and exports no secret, with credential certificate', async () => {
      const run = await runProgram({ credential: 'certificate', certificatePem: certPem });
      expect(run.ofType(certificateType)).toHaveLength(1);
      expect(run.ofType(passwordType)).toEqual([]);
      expect('clientSecret' in run.outputs).toBe(false);
      expect('clientSecretExpiry' in run.outputs).toBe(false);
    });
  });
});
