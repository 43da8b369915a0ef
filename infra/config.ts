// Typed, validated stack configuration: the one place for defaults and for the messages a user sees.
import * as pulumi from '@pulumi/pulumi';
import { cloudNames, type CloudName } from '../connector/config/clouds.ts';

export const configNamespace = 'o365-connector';

/** The Office 365 Management APIs permissions this kit knows, each requested as Role and as Scope. */
export const permissionNames = ['ActivityFeed.Read', 'ActivityFeed.ReadDlp', 'ServiceHealth.Read'] as const;
export type PermissionName = (typeof permissionNames)[number];

export const credentialKinds = ['secret', 'certificate', 'both'] as const;
export type CredentialKind = (typeof credentialKinds)[number];

export interface KeyVaultConfig {
  readonly resourceGroupName: string;
  readonly location: string;
  /** Vault names are global in Azure: 3-24 letters, digits and hyphens. */
  readonly name: string | undefined;
}

export interface SubscriptionAliasConfig {
  readonly billingScope: string;
  readonly displayName: string;
  readonly workload: 'Production' | 'DevTest';
}

export interface InfraConfig {
  readonly displayName: string;
  readonly cloud: CloudName;
  readonly permissions: readonly PermissionName[];
  readonly credential: CredentialKind;
  readonly secretLifetimeDays: number;
  /** Bump by one to rotate the client secret; the previous secret stays valid until the next bump. */
  readonly secretRotation: number;
  /** Public certificate (PEM) registered as a credential when `credential` is certificate or both. */
  readonly certificatePem: string | undefined;
  readonly publisherId: string | undefined;
  readonly keyVault: KeyVaultConfig | undefined;
  readonly subscriptionAlias: SubscriptionAliasConfig | undefined;
}

/** What the program reads config from: `pulumi.Config` in a real run, a plain map in tests. */
export interface ConfigSource {
  get(key: string): string | undefined;
}

/** A RunError, so that `pulumi up` prints the one-line message without a stack trace. */
export class InfraConfigError extends pulumi.RunError {
  readonly key: string;
  constructor(key: string, message: string) {
    super(`${configNamespace}:${key}: ${message}`);
    this.name = 'InfraConfigError';
    this.key = key;
  }
}

const guid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const billingScopePattern = /^\/providers\/Microsoft\.Billing\/billingAccounts\/[^/]+(\/(billingProfiles|enrollmentAccounts|customers)\/[^/]+)*(\/invoiceSections\/[^/]+)?$/i;
const vaultNamePattern = /^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$/;

function text(source: ConfigSource, key: string): string | undefined {
  const value = source.get(key);
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

function integer(source: ConfigSource, key: string, fallback: number, min: number, max: number, hint: string): number {
  const raw = text(source, key);
  if (raw === undefined) return fallback;
  if (!/^-?\d+$/.test(raw)) throw new InfraConfigError(key, `"${raw}" is not a whole number; ${hint}`);
  const value = Number(raw);
  if (value < min || value > max) throw new InfraConfigError(key, `${value} is out of range; ${hint}`);
  return value;
}

function flag(source: ConfigSource, key: string): boolean {
  const raw = text(source, key);
  if (raw === undefined) return false;
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  throw new InfraConfigError(key, `"${raw}" is not true or false`);
}

function oneOf<T extends string>(source: ConfigSource, key: string, allowed: readonly T[], fallback: T): T {
  const raw = text(source, key);
  if (raw === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(raw)) {
    throw new InfraConfigError(key, `unknown value "${raw}"; use one of ${allowed.join(', ')}`);
  }
  return raw as T;
}

function permissions(source: ConfigSource): PermissionName[] {
  const raw = source.get('permissions');
  if (raw === undefined) return [...permissionNames];
  let names: unknown;
  try {
    names = raw.trim().startsWith('[') ? JSON.parse(raw) : raw.split(',');
  } catch {
    throw new InfraConfigError('permissions', 'not a list; set it like ActivityFeed.Read,ServiceHealth.Read');
  }
  if (!Array.isArray(names)) throw new InfraConfigError('permissions', 'not a list; set it like ActivityFeed.Read,ServiceHealth.Read');
  const chosen = names.map((name) => String(name).trim()).filter((name) => name !== '');
  for (const name of chosen) {
    if (!(permissionNames as readonly string[]).includes(name)) {
      throw new InfraConfigError('permissions', `unknown permission "${name}"; use any of ${permissionNames.join(', ')}`);
    }
  }
  if (!chosen.includes('ActivityFeed.Read')) {
    throw new InfraConfigError('permissions', 'must include ActivityFeed.Read: without it no audit content can be read');
  }
  return permissionNames.filter((name) => chosen.includes(name));
}

export function readConfig(source: ConfigSource): InfraConfig {
  const rawName = source.get('displayName');
  if (rawName !== undefined && rawName.trim() === '') {
    throw new InfraConfigError('displayName', 'must not be empty; e.g. pulumi config set displayName "O365 audit collector"');
  }
  const displayName = rawName?.trim() ?? 'o365-connector';
  if (displayName.length > 120) throw new InfraConfigError('displayName', 'must be at most 120 characters');

  const cloud = oneOf(source, 'cloud', cloudNames, 'commercial');
  const credential = oneOf(source, 'credential', credentialKinds, 'secret');
  const secretLifetimeDays = integer(source, 'secretLifetimeDays', 180, 1, 730, 'use 1 to 730 days (Microsoft recommends under 12 months)');
  const secretRotation = integer(source, 'secretRotation', 0, 0, 1_000_000, 'use 0 or a positive generation number');

  const certificatePem = text(source, 'certificatePem');
  if (credential !== 'secret') {
    if (certificatePem === undefined) {
      throw new InfraConfigError('certificatePem', `required when credential is ${credential}; pulumi config set certificatePem -- "$(cat cert.pem)"`);
    }
    if (!certificatePem.includes('-----BEGIN CERTIFICATE-----')) {
      throw new InfraConfigError('certificatePem', 'is not a PEM certificate (expected -----BEGIN CERTIFICATE-----); give the public certificate, never the private key');
    }
  }

  const publisherId = text(source, 'publisherId');
  if (publisherId !== undefined && !guid.test(publisherId)) {
    throw new InfraConfigError('publisherId', `"${publisherId}" is not a GUID; leave it unset to use the tenant id`);
  }

  let keyVault: KeyVaultConfig | undefined;
  if (flag(source, 'keyVault')) {
    const resourceGroupName = text(source, 'keyVaultResourceGroup');
    const location = text(source, 'keyVaultLocation');
    if (resourceGroupName === undefined) throw new InfraConfigError('keyVaultResourceGroup', 'required when keyVault is true (an existing resource group)');
    if (location === undefined) throw new InfraConfigError('keyVaultLocation', 'required when keyVault is true (e.g. westeurope)');
    const name = text(source, 'keyVaultName');
    if (name !== undefined && !vaultNamePattern.test(name)) {
      throw new InfraConfigError('keyVaultName', `"${name}" is not a valid vault name: 3-24 letters, digits and hyphens, starting with a letter`);
    }
    keyVault = { resourceGroupName, location, name };
  }

  let subscriptionAlias: SubscriptionAliasConfig | undefined;
  const billingScope = text(source, 'billingScope');
  if (billingScope !== undefined) {
    if (!billingScopePattern.test(billingScope)) {
      throw new InfraConfigError('billingScope', 'must look like /providers/Microsoft.Billing/billingAccounts/<id>/enrollmentAccounts/<id> (or billingProfiles/<id>/invoiceSections/<id>)');
    }
    subscriptionAlias = {
      billingScope,
      displayName: text(source, 'subscriptionDisplayName') ?? `${displayName} logging`,
      workload: oneOf(source, 'subscriptionWorkload', ['Production', 'DevTest'] as const, 'Production'),
    };
  }

  return { displayName, cloud, permissions: permissions(source), credential, secretLifetimeDays, secretRotation, certificatePem, publisherId, keyVault, subscriptionAlias };
}
