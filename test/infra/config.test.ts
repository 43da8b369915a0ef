import { beforeAll, describe, expect, it } from 'vitest';
import * as pulumi from '@pulumi/pulumi';
import { InfraConfigError, readConfig } from '../../infra/config.ts';
import { selfSignedCertificate } from './certificates.ts';
import { stackSettings } from './harness.ts';

const now = new Date('2026-11-25T00:00:00Z');

/** Reads the config exactly as `pulumi up` would: from the stack's config map. */
function read(settings: Record<string, string>) {
  pulumi.runtime.setAllConfig(stackSettings(settings));
  return readConfig(undefined, now);
}

function problemsOf(settings: Record<string, string>): string[] {
  try {
    read(settings);
  } catch (error) {
    if (error instanceof InfraConfigError) return error.message.split('\n');
    throw error;
  }
  throw new Error('the configuration was accepted');
}

let certificate: { certPem: string; keyPem: string };
let expired: { certPem: string; keyPem: string };
beforeAll(async () => {
  certificate = await selfSignedCertificate({ notBefore: new Date('2026-01-01T00:00:00Z'), notAfter: new Date('2028-01-01T00:00:00Z') });
  expired = await selfSignedCertificate({ notBefore: new Date('2024-01-01T00:00:00Z'), notAfter: new Date('2025-01-01T00:00:00Z') });
});

describe('stack configuration', () => {
  it('applies the documented defaults on a bare stack', () => {
    expect(read({})).toEqual({
      mode: 'single', homeStack: undefined, consent: 'grant',
      displayName: 'o365-connector', cloud: 'commercial',
      permissions: ['ActivityFeed.Read', 'ActivityFeed.ReadDlp', 'ServiceHealth.Read'],
      delegatedPermissions: ['ActivityFeed.Read', 'ActivityFeed.ReadDlp', 'ServiceHealth.Read'], serviceHealth: true, auditSearch: true,
      credential: 'secret', federatedIdentities: [], managedIdentityPrincipalId: undefined, secretLifetimeDays: 180, secretRotation: 0, certificatePem: undefined, publisherId: undefined,
      keyVault: undefined, subscriptionAlias: undefined, azureadSettings: {}, azureNativeSettings: {},
    });
  });

  it.each([
    [{ cloud: 'azure-germany' }, 'o365-connector:cloud: unknown value "azure-germany"; use one of commercial, gcc, gcchigh, dod, china'],
    [{ displayName: '  ' }, 'o365-connector:displayName: must not be empty; pulumi config set o365-connector:displayName "SOC audit collector"'],
    [{ displayName: 'x'.repeat(121) }, 'o365-connector:displayName: is 121 characters; use at most 120'],
    [{ secretLifetimeDays: '0' }, 'o365-connector:secretLifetimeDays: 0 is out of range; use 1 to 730 days (Microsoft recommends less than 12 months)'],
    [{ secretLifetimeDays: '731' }, 'o365-connector:secretLifetimeDays: 731 is out of range; use 1 to 730 days (Microsoft recommends less than 12 months)'],
    [{ secretLifetimeDays: 'six months' }, 'o365-connector:secretLifetimeDays: "six months" is not a whole number; use 1 to 730 days (Microsoft recommends less than 12 months)'],
    [{ secretRotation: '-1' }, 'o365-connector:secretRotation: -1 is out of range; use 0 or a positive generation number, one more than the current to rotate'],
    [{ permissions: 'ActivityFeed.Read,Mail.Read' }, 'o365-connector:permissions: unknown permission "Mail.Read"; use any of ActivityFeed.Read, ActivityFeed.ReadDlp, ServiceHealth.Read'],
    [{ permissions: 'ServiceHealth.Read' }, 'o365-connector:permissions: must include ActivityFeed.Read: without it no audit content can be read'],
    [{ permissions: '{"ActivityFeed.Read":true}' }, 'o365-connector:permissions: not a list; set it like: pulumi config set o365-connector:permissions ActivityFeed.Read,ServiceHealth.Read'],
    [{ permissions: 'ActivityFeed.Read', delegatedPermissions: 'ServiceHealth.Read' }, 'o365-connector:delegatedPermissions: ServiceHealth.Read is not in permissions; delegated permissions must be a subset of o365-connector:permissions (or "none")'],
    [{ credential: 'password' }, 'o365-connector:credential: unknown value "password"; use one of secret, certificate, both, federated, managedIdentity'],
    [{ credential: 'certificate' }, 'o365-connector:certificatePem: required when credential is certificate; pulumi config set o365-connector:certificatePem -- "$(cat cert.pem)"'],
    [{ credential: 'both', certificatePem: 'MIIBkTCB+wIJAK' }, 'o365-connector:certificatePem: is not a PEM certificate (expected -----BEGIN CERTIFICATE-----); pulumi config set o365-connector:certificatePem -- "$(cat cert.pem)"'],
    [{ publisherId: 'contoso' }, 'o365-connector:publisherId: "contoso" is not a GUID; leave it unset to use the tenant id'],
    [{ keyVault: 'yes' }, 'o365-connector:keyVault: "yes" is not true or false; pulumi config set o365-connector:keyVault true'],
    [{ keyVault: 'true', keyVaultLocation: 'westeurope' }, 'o365-connector:keyVaultResourceGroup: required when keyVault is true: an existing resource group; pulumi config set o365-connector:keyVaultResourceGroup rg-soc'],
    [{ keyVault: 'true', keyVaultResourceGroup: 'rg-soc' }, 'o365-connector:keyVaultLocation: required when keyVault is true; pulumi config set o365-connector:keyVaultLocation westeurope'],
    [{ keyVault: 'true', keyVaultResourceGroup: 'rg-soc', keyVaultLocation: 'westeurope', keyVaultName: 'kv_soc' }, 'o365-connector:keyVaultName: "kv_soc" is not a valid vault name: 3-24 letters, digits and single hyphens, starting with a letter; or leave it unset for a generated name'],
    [{ keyVault: 'true', keyVaultResourceGroup: 'rg-soc', keyVaultLocation: 'westeurope', keyVaultSecretReaders: 'soc-team' }, 'o365-connector:keyVaultSecretReaders: "soc-team" is not an object id (GUID) of a service principal or managed identity, nor User:<GUID> or Group:<GUID>'],
    [{ keyVaultResourceGroup: 'rg-soc' }, 'o365-connector:keyVaultResourceGroup: is set but keyVault is not enabled; pulumi config set o365-connector:keyVault true, or remove keyVaultResourceGroup'],
    [{ billingScope: 'billing-account-1' }, 'o365-connector:billingScope: must look like /providers/Microsoft.Billing/billingAccounts/<id>/enrollmentAccounts/<id> (EA) or /providers/Microsoft.Billing/billingAccounts/<id>/billingProfiles/<id>/invoiceSections/<id> (MCA)'],
    [{ subscriptionWorkload: 'DevTest' }, 'o365-connector:subscriptionWorkload: is set but no billingScope is configured; set o365-connector:billingScope, or remove subscriptionWorkload'],
    [{ secretLifetime: '90' }, 'o365-connector:secretLifetime: unknown key; known keys are mode, homeStack, consent, displayName, cloud, permissions, delegatedPermissions, credential, secretLifetimeDays, secretRotation, certificatePem, publisherId, keyVault, keyVaultResourceGroup, keyVaultLocation, keyVaultName, keyVaultSecretName, keyVaultSecretReaders, keyVaultPurgeProtection, billingScope, subscriptionAliasName, subscriptionDisplayName, subscriptionWorkload, serviceHealth, federatedIdentities, managedIdentityPrincipalId, auditSearch, sentinelWorkspace, sentinelPrincipalId (pulumi config rm o365-connector:secretLifetime)'],
    [{ serviceHealth: 'yes' }, 'o365-connector:serviceHealth: "yes" is not true or false; pulumi config set o365-connector:serviceHealth true'],
    [{ displayname: 'SOC' }, 'o365-connector:displayname: unknown key; did you mean o365-connector:displayName? (pulumi config rm o365-connector:displayname)'],
    [{ cloud: 'gcchigh', 'azuread:environment': 'global' }, 'azuread:environment: "global" does not match o365-connector:cloud gcchigh, which sets it to usgovernmentl4 itself; pulumi config rm azuread:environment'],
    [{ mode: 'fleet' }, 'o365-connector:mode: unknown value "fleet"; use one of single, home, customer'],
    [{ mode: 'costumer', homeStack: 'acme/o365-connector/home', consent: 'verify' }, 'o365-connector:mode: unknown value "costumer"; use one of single, home, customer'],
    [{ homeStack: 'acme/o365-connector/home' }, 'o365-connector:homeStack: only a customer stack reads it, but mode is single; pulumi config set o365-connector:mode customer, or pulumi config rm o365-connector:homeStack'],
    [{ mode: 'home', consent: 'verify' }, 'o365-connector:consent: only a customer stack reads it, but mode is home; pulumi config set o365-connector:mode customer, or pulumi config rm o365-connector:consent'],
    [{ mode: 'home', publisherId: '6b7e2f40-1c3d-4e5f-8a9b-0c1d2e3f4a5b' }, 'o365-connector:publisherId: is not read in a home stack: each customer stack sends its own tenant\'s id (its own throttling bucket); pulumi config rm o365-connector:publisherId'],
    [{ mode: 'customer' }, 'o365-connector:homeStack: required when mode is customer: the home stack that registered the app; pulumi config set o365-connector:homeStack acme/o365-connector/home'],
    [{ mode: 'customer', homeStack: 'home' }, 'o365-connector:homeStack: "home" is not a fully qualified stack name; use org/project/stack, e.g. pulumi config set o365-connector:homeStack acme/o365-connector/home'],
    [{ mode: 'customer', homeStack: 'acme/o365-connector/home', consent: 'ask' }, 'o365-connector:consent: unknown value "ask"; use one of grant, verify'],
    [{ mode: 'customer', homeStack: 'acme/o365-connector/home', secretRotation: '4' }, 'o365-connector:secretRotation: is not read in a customer stack: rotate in the home stack, then run pulumi up on each customer stack; pulumi config rm o365-connector:secretRotation'],
    [{ mode: 'customer', homeStack: 'acme/o365-connector/home', permissions: 'ServiceHealth.Read' }, 'o365-connector:permissions: is not read in a customer stack: the permissions are the home stack\'s app\'s; pulumi config rm o365-connector:permissions'],
    [{ mode: 'customer', homeStack: 'acme/o365-connector/home', credential: 'certificate' }, 'o365-connector:credential: is not read in a customer stack: the credentials come from the home stack; pulumi config rm o365-connector:credential'],
    [{ mode: 'customer', homeStack: 'acme/o365-connector/home', keyVaultResourceGroup: 'rg-soc' }, 'o365-connector:keyVaultResourceGroup: is not read in a customer stack: the secret is the home stack\'s; keep it in a vault there; pulumi config rm o365-connector:keyVaultResourceGroup'],
    [{ mode: 'customer', homeStack: 'acme/o365-connector/home', publisherId: '6b7e2f40-1c3d-4e5f-8a9b-0c1d2e3f4a5b' }, 'o365-connector:publisherId: is not read in a customer stack: a customer stack sends the customer tenant\'s id (its own throttling bucket); pulumi config rm o365-connector:publisherId'],
    [{ mode: 'customer', homeStack: 'acme/o365-connector/home', billingScope: '/providers/Microsoft.Billing/billingAccounts/1' }, 'o365-connector:billingScope: is not read in a customer stack: a customer stack creates nothing but the consent; pulumi config rm o365-connector:billingScope'],
  ])('rejects %j with one line naming the key and the fix', (settings, message) => {
    expect(problemsOf(settings)).toEqual([message]);
  });

  it('reads a customer stack: its home stack, grant by default or verify', () => {
    expect(read({ mode: 'customer', homeStack: 'acme/o365-connector/home' })).toMatchObject({ mode: 'customer', homeStack: 'acme/o365-connector/home', consent: 'grant' });
    expect(read({ mode: 'customer', homeStack: 'acme/o365-connector/home', consent: 'verify', cloud: 'gcc' })).toMatchObject({ consent: 'verify', cloud: 'gcc' });
    expect(read({ mode: 'home', secretRotation: '2' })).toMatchObject({ mode: 'home', homeStack: undefined, secretRotation: 2 });
  });

  it('refuses each of a customer stack\'s misplaced keys on its own line, once', () => {
    expect(problemsOf({ mode: 'customer', homeStack: 'acme/o365-connector/home', credential: 'both', keyVault: 'true', keyVaultLocation: 'westeurope' })).toEqual([
      'the stack configuration has 3 problems:',
      'o365-connector:credential: is not read in a customer stack: the credentials come from the home stack; pulumi config rm o365-connector:credential',
      'o365-connector:keyVault: is not read in a customer stack: the secret is the home stack\'s; keep it in a vault there; pulumi config rm o365-connector:keyVault',
      'o365-connector:keyVaultLocation: is not read in a customer stack: the secret is the home stack\'s; keep it in a vault there; pulumi config rm o365-connector:keyVaultLocation',
    ]);
  });

  it('reports every bad key at once, one line each', () => {
    expect(problemsOf({ cloud: 'mars', secretLifetimeDays: '9999', publisherId: 'x' })).toEqual([
      'the stack configuration has 3 problems:',
      'o365-connector:cloud: unknown value "mars"; use one of commercial, gcc, gcchigh, dod, china',
      'o365-connector:secretLifetimeDays: 9999 is out of range; use 1 to 730 days (Microsoft recommends less than 12 months)',
      'o365-connector:publisherId: "x" is not a GUID; leave it unset to use the tenant id',
    ]);
  });

  it('is a pulumi RunError, so `pulumi up` prints the lines without a stack trace', () => {
    pulumi.runtime.setAllConfig(stackSettings({ cloud: 'mars' }));
    expect(() => readConfig(undefined, now)).toThrow(pulumi.RunError);
  });

  it('accepts permission lists as comma lists, JSON arrays (pulumi config set --path) and "none" for delegated', () => {
    expect(read({ permissions: 'ActivityFeed.Read, ServiceHealth.Read' }).permissions).toEqual(['ActivityFeed.Read', 'ServiceHealth.Read']);
    expect(read({ permissions: '["ServiceHealth.Read","ActivityFeed.Read"]' }).permissions).toEqual(['ActivityFeed.Read', 'ServiceHealth.Read']);
    const noDelegated = read({ permissions: 'ActivityFeed.Read', delegatedPermissions: 'none' });
    expect(noDelegated.permissions).toEqual(['ActivityFeed.Read']);
    expect(noDelegated.delegatedPermissions).toEqual([]);
    expect(read({ permissions: 'ActivityFeed.Read,ServiceHealth.Read' }).delegatedPermissions).toEqual(['ActivityFeed.Read', 'ServiceHealth.Read']);
  });

  it('accepts a public certificate and refuses a private key or an expired certificate', () => {
    expect(read({ credential: 'both', certificatePem: certificate.certPem }).certificatePem).toBe(certificate.certPem.trim());
    expect(problemsOf({ credential: 'certificate', certificatePem: certificate.keyPem })).toEqual([
      'o365-connector:certificatePem: holds a private key; give only the public certificate (-----BEGIN CERTIFICATE-----) and keep the key on the connector host',
    ]);
    expect(problemsOf({ credential: 'certificate', certificatePem: expired.certPem })).toEqual([
      'o365-connector:certificatePem: the certificate expired on 2025-01-01T00:00:00.000Z; issue a new one and set it again',
    ]);
    expect(problemsOf({ credential: 'certificate', certificatePem: certificate.certPem, keyVault: 'true', keyVaultResourceGroup: 'rg', keyVaultLocation: 'westeurope' })).toEqual([
      'o365-connector:keyVault: holds the client secret, but credential is "certificate"; pulumi config set o365-connector:credential both, or set keyVault false',
    ]);
  });

  it('reads the Key Vault and subscription alias settings with their defaults', () => {
    const config = read({
      keyVault: 'true', keyVaultResourceGroup: 'rg-soc', keyVaultLocation: 'westeurope',
      billingScope: '/providers/Microsoft.Billing/billingAccounts/1234567/enrollmentAccounts/7654321', displayName: 'SOC audit',
    });
    expect(config.keyVault).toEqual({
      resourceGroupName: 'rg-soc', location: 'westeurope', name: undefined, secretName: 'o365-connector-client-secret', secretReaders: [], purgeProtection: true,
    });
    expect(config.subscriptionAlias).toEqual({
      aliasName: 'o365-connector-logging', billingScope: '/providers/Microsoft.Billing/billingAccounts/1234567/enrollmentAccounts/7654321',
      displayName: 'SOC audit logging', workload: 'Production',
    });
  });

  it('hands the stack\'s azuread and azure-native settings to the explicit providers', () => {
    const config = read({ 'azuread:tenantId': 'contoso.onmicrosoft.com', 'azuread:useCli': 'false', 'azure-native:subscriptionId': 'sub', cloud: 'dod', 'azuread:environment': 'usgovernmentl5' });
    expect(config.azureadSettings).toEqual({ tenantId: 'contoso.onmicrosoft.com', useCli: 'false', environment: 'usgovernmentl5' });
    expect(config.azureNativeSettings).toEqual({ subscriptionId: 'sub' });
  });
});
