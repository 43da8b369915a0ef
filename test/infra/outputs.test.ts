import { describe, expect, it } from 'vitest';
import * as pulumi from '@pulumi/pulumi';
import { stackOutputsSchema } from '../../contract/stack-outputs.ts';
import { selfSignedCertificate } from './certificates.ts';
import { runProgram, type ProgramRun } from './harness.ts';
import { sentinelWorkspaceId, valueOf } from './mocks.ts';

/** What `pulumi stack output --json --show-secrets` would print for this run. */
async function shown(outputs: ProgramRun['outputs']): Promise<Record<string, unknown>> {
  const entries = await Promise.all(Object.entries(outputs).map(async ([key, output]) => [key, await valueOf(output as pulumi.Output<unknown>)] as const));
  return Object.fromEntries(entries);
}

const certificate = await selfSignedCertificate({ notBefore: new Date('2026-01-01T00:00:00Z'), notAfter: new Date('2028-01-01T00:00:00Z') });

describe('the stack outputs satisfy the connector\'s stack-outputs contract', () => {
  it.each([
    ['a bare stack', {}],
    ['gcc high with a configured publisher id and no DLP', { cloud: 'gcchigh', publisherId: '6b7e2f40-1c3d-4e5f-8a9b-0c1d2e3f4a5b', permissions: 'ActivityFeed.Read' }],
    ['a certificate only', { credential: 'certificate', certificatePem: certificate.certPem }],
    ['both credentials, a Key Vault and a subscription alias', {
      credential: 'both', certificatePem: certificate.certPem, keyVault: 'true', keyVaultResourceGroup: 'rg-soc', keyVaultLocation: 'westeurope',
      billingScope: '/providers/Microsoft.Billing/billingAccounts/1234567/enrollmentAccounts/7654321',
    }],
    ['a Microsoft Sentinel destination', { sentinelWorkspace: sentinelWorkspaceId }],
  ])('%s', async (_name, settings: Record<string, string>) => {
    const outputs = await shown((await runProgram(settings)).outputs);
    // Strict: the program exports no key the contract does not know, and every value passes as exported.
    const parsed = stackOutputsSchema.strict().safeParse(outputs);
    expect(parsed.error?.issues ?? []).toEqual([]);
    expect(parsed.data).toEqual(outputs);
  });
});
