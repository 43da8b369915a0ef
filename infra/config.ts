// Typed, validated stack configuration: the one place for defaults and for the messages a user sees.
import { X509Certificate } from 'node:crypto';
import * as pulumi from '@pulumi/pulumi';
import { cloudNames, type CloudName } from '../connector/config/clouds.ts';

export const configNamespace = 'o365-connector';

/** The Office 365 Management APIs permissions this kit knows; the default requests all of them. */
export const permissionNames = ['ActivityFeed.Read', 'ActivityFeed.ReadDlp', 'ServiceHealth.Read'] as const;
export type PermissionName = (typeof permissionNames)[number];

export const credentialKinds = ['secret', 'certificate', 'both'] as const;
export type CredentialKind = (typeof credentialKinds)[number];

export const subscriptionWorkloads = ['Production', 'DevTest'] as const;

export const principalTypes = ['ServicePrincipal', 'User', 'Group'] as const;
export interface SecretReader {
  readonly objectId: string;
  /** ARM checks it against the object; a managed identity or app is a ServicePrincipal. */
  readonly principalType: (typeof principalTypes)[number];
}

export interface KeyVaultConfig {
  readonly resourceGroupName: string;
  readonly location: string;
  /** Vault names are global in Azure; unset lets Pulumi add a random suffix. */
  readonly name: string | undefined;
  readonly secretName: string;
  /** Identities given "Key Vault Secrets User" on the vault (an RBAC vault grants nobody data access by itself). */
  readonly secretReaders: readonly SecretReader[];
  readonly purgeProtection: boolean;
}

export interface SubscriptionAliasConfig {
  readonly aliasName: string;
  readonly billingScope: string;
  readonly displayName: string;
  readonly workload: (typeof subscriptionWorkloads)[number];
}

export interface InfraConfig {
  readonly displayName: string;
  readonly cloud: CloudName;
  /** Requested as application permissions (Role) and consented with app role assignments. */
  readonly permissions: readonly PermissionName[];
  /** Requested as delegated permissions (Scope) and consented with one delegated grant; a subset of `permissions`. */
  readonly delegatedPermissions: readonly PermissionName[];
  readonly credential: CredentialKind;
  readonly secretLifetimeDays: number;
  /** Bump by one to rotate the client secret; the previous secret stays valid until the next bump. */
  readonly secretRotation: number;
  /** Public certificate (PEM) registered as a credential when `credential` is certificate or both. */
  readonly certificatePem: string | undefined;
  readonly publisherId: string | undefined;
  readonly keyVault: KeyVaultConfig | undefined;
  readonly subscriptionAlias: SubscriptionAliasConfig | undefined;
  /** The stack's `azuread:*` settings, handed to the explicit provider (explicit providers ignore stack config). */
  readonly azureadSettings: Readonly<Record<string, string>>;
  /** The stack's `azure-native:*` settings, handed to the explicit provider. */
  readonly azureNativeSettings: Readonly<Record<string, string>>;
}

/** Where configuration comes from: the stack's config in a real run and in tests (`pulumi.runtime.setAllConfig`). */
export interface ConfigSource {
  /** Every key that is set, with its namespace (`o365-connector:cloud`, `azuread:tenantId`). */
  keys(): string[];
  get(key: string): string | undefined;
}

export function stackConfig(): ConfigSource {
  const own = new pulumi.Config(configNamespace);
  const prefix = `${configNamespace}:`;
  return {
    keys: () => Object.keys(pulumi.runtime.allConfig()),
    // Our own keys go through pulumi.Config, which knows the project namespace; others are read as stored.
    get: (key) => (key.startsWith(prefix) ? own.get(key.slice(prefix.length)) : pulumi.runtime.getConfig(key)),
  };
}

export interface ConfigProblem {
  /** The full config key, e.g. `o365-connector:cloud`. */
  readonly key: string;
  /** What is wrong and how to fix it, in one line. */
  readonly message: string;
}

/** A RunError, so that `pulumi up` prints the messages without a stack trace: one line per bad key. */
export class InfraConfigError extends pulumi.RunError {
  readonly problems: readonly ConfigProblem[];
  constructor(problems: readonly ConfigProblem[]) {
    const lines = problems.map((problem) => `${problem.key}: ${problem.message}`);
    super(lines.length === 1 ? lines[0]! : `the stack configuration has ${lines.length} problems:\n${lines.join('\n')}`);
    this.name = 'InfraConfigError';
    this.problems = problems;
  }
}

const guid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const billingScopePattern = /^\/providers\/Microsoft\.Billing\/billingAccounts\/[^/]+(\/(billingProfiles|enrollmentAccounts|customers)\/[^/]+)*(\/invoiceSections\/[^/]+)?$/i;
const vaultNamePattern = /^[a-zA-Z](?!.*--)[a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$/;
const vaultSecretNamePattern = /^[0-9a-zA-Z-]{1,127}$/;
const resourceGroupPattern = /^[-\w.()]{0,89}[-\w()]$/u;
const aliasNamePattern = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;

/** Every key this program reads; anything else under `o365-connector:` is a typo worth stopping for. */
export const knownKeys = [
  'displayName', 'cloud', 'permissions', 'delegatedPermissions', 'credential', 'secretLifetimeDays', 'secretRotation',
  'certificatePem', 'publisherId', 'keyVault', 'keyVaultResourceGroup', 'keyVaultLocation', 'keyVaultName',
  'keyVaultSecretName', 'keyVaultSecretReaders', 'keyVaultPurgeProtection', 'billingScope', 'subscriptionAliasName',
  'subscriptionDisplayName', 'subscriptionWorkload',
] as const;
type Key = (typeof knownKeys)[number];

/** Reads one namespace's keys while collecting every problem, so the user sees them all at once. */
class ConfigReader {
  readonly problems: ConfigProblem[] = [];
  readonly #source: ConfigSource;
  constructor(source: ConfigSource) {
    this.#source = source;
  }

  fail(key: Key | string, message: string): undefined {
    this.problems.push({ key: key.includes(':') ? key : `${configNamespace}:${key}`, message });
    return undefined;
  }

  raw(key: Key): string | undefined {
    return this.#source.get(`${configNamespace}:${key}`);
  }

  text(key: Key): string | undefined {
    const value = this.raw(key);
    return value === undefined || value.trim() === '' ? undefined : value.trim();
  }

  integer(key: Key, fallback: number, min: number, max: number, hint: string): number {
    const raw = this.text(key);
    if (raw === undefined) return fallback;
    if (!/^-?\d+$/.test(raw)) return this.fail(key, `"${raw}" is not a whole number; ${hint}`) ?? fallback;
    const value = Number(raw);
    if (value < min || value > max) return this.fail(key, `${value} is out of range; ${hint}`) ?? fallback;
    return value;
  }

  flag(key: Key, fallback: boolean): boolean {
    const raw = this.text(key);
    if (raw === undefined) return fallback;
    if (raw === 'true') return true;
    if (raw === 'false') return false;
    return this.fail(key, `"${raw}" is not true or false; pulumi config set ${configNamespace}:${key} true`) ?? fallback;
  }

  oneOf<T extends string>(key: Key, allowed: readonly T[], fallback: T): T {
    const raw = this.text(key);
    if (raw === undefined) return fallback;
    if ((allowed as readonly string[]).includes(raw)) return raw as T;
    return this.fail(key, `unknown value "${raw}"; use one of ${allowed.join(', ')}`) ?? fallback;
  }

  /** A list given as `a,b`, as a JSON array, or as YAML list in the stack file (which Pulumi hands over as JSON). */
  list(key: Key, example: string): string[] | undefined {
    const raw = this.raw(key);
    if (raw === undefined) return undefined;
    let items: unknown = raw.split(',');
    if (/^\s*[[{]/.test(raw)) {
      try {
        items = JSON.parse(raw);
      } catch {
        items = undefined;
      }
    }
    if (!Array.isArray(items) || items.some((item) => typeof item !== 'string')) {
      return this.fail(key, `not a list; set it like: pulumi config set ${configNamespace}:${key} ${example}`);
    }
    return items.map((item: string) => item.trim()).filter((item) => item !== '');
  }

  unknownKeys(): void {
    const prefix = `${configNamespace}:`;
    for (const key of this.#source.keys()) {
      if (!key.startsWith(prefix)) continue;
      const name = key.slice(prefix.length);
      if (!(knownKeys as readonly string[]).includes(name)) {
        const near = knownKeys.find((known) => known.toLowerCase() === name.toLowerCase());
        this.fail(key, near ? `unknown key; did you mean ${prefix}${near}? (pulumi config rm ${key})` : `unknown key; known keys are ${knownKeys.join(', ')} (pulumi config rm ${key})`);
      }
    }
  }

  /** Every `namespace:*` setting, for providers this program creates explicitly. */
  namespace(namespace: string): Record<string, string> {
    const settings: Record<string, string> = {};
    for (const key of this.#source.keys()) {
      if (!key.startsWith(`${namespace}:`)) continue;
      const value = this.#source.get(key);
      if (value !== undefined) settings[key.slice(namespace.length + 1)] = value;
    }
    return settings;
  }
}

function permissionList(reader: ConfigReader, key: 'permissions' | 'delegatedPermissions', fallback: readonly PermissionName[]): PermissionName[] {
  const raw = reader.text(key);
  if (raw === undefined) return [...fallback];
  if (key === 'delegatedPermissions' && (raw === 'none' || raw === '[]')) return [];
  const names = reader.list(key, 'ActivityFeed.Read,ServiceHealth.Read');
  if (names === undefined) return [...fallback];
  const unknown = names.filter((name) => !(permissionNames as readonly string[]).includes(name));
  if (unknown.length > 0) {
    reader.fail(key, `unknown permission ${unknown.map((name) => `"${name}"`).join(', ')}; use any of ${permissionNames.join(', ')}`);
    return [...fallback];
  }
  return permissionNames.filter((name) => names.includes(name));
}

function certificate(reader: ConfigReader, credential: CredentialKind, now: Date): string | undefined {
  const pem = reader.text('certificatePem');
  if (credential === 'secret') {
    if (pem !== undefined) reader.fail('certificatePem', `is set but credential is "secret"; pulumi config set ${configNamespace}:credential both (or certificate), or remove certificatePem`);
    return undefined;
  }
  const setIt = `pulumi config set ${configNamespace}:certificatePem -- "$(cat cert.pem)"`;
  if (pem === undefined) return reader.fail('certificatePem', `required when credential is ${credential}; ${setIt}`);
  if (/PRIVATE KEY-----/.test(pem)) return reader.fail('certificatePem', `holds a private key; give only the public certificate (-----BEGIN CERTIFICATE-----) and keep the key on the connector host`);
  let parsed: X509Certificate;
  try {
    parsed = new X509Certificate(pem);
  } catch {
    return reader.fail('certificatePem', `is not a PEM certificate (expected -----BEGIN CERTIFICATE-----); ${setIt}`);
  }
  if (new Date(parsed.validToDate).getTime() <= now.getTime()) {
    return reader.fail('certificatePem', `the certificate expired on ${new Date(parsed.validToDate).toISOString()}; issue a new one and set it again`);
  }
  return pem;
}

function keyVault(reader: ConfigReader, credential: CredentialKind): KeyVaultConfig | undefined {
  if (!reader.flag('keyVault', false)) {
    for (const key of ['keyVaultResourceGroup', 'keyVaultLocation', 'keyVaultName', 'keyVaultSecretName', 'keyVaultSecretReaders'] as const) {
      if (reader.text(key) !== undefined) reader.fail(key, `is set but keyVault is not enabled; pulumi config set ${configNamespace}:keyVault true, or remove ${key}`);
    }
    return undefined;
  }
  if (credential === 'certificate') reader.fail('keyVault', `holds the client secret, but credential is "certificate"; pulumi config set ${configNamespace}:credential both, or set keyVault false`);
  const resourceGroupName = reader.text('keyVaultResourceGroup');
  if (resourceGroupName === undefined) reader.fail('keyVaultResourceGroup', `required when keyVault is true: an existing resource group; pulumi config set ${configNamespace}:keyVaultResourceGroup rg-soc`);
  else if (!resourceGroupPattern.test(resourceGroupName)) reader.fail('keyVaultResourceGroup', `"${resourceGroupName}" is not a resource group name (1-90 letters, digits, - _ . ( ), not ending in .)`);
  const location = reader.text('keyVaultLocation');
  if (location === undefined) reader.fail('keyVaultLocation', `required when keyVault is true; pulumi config set ${configNamespace}:keyVaultLocation westeurope`);
  else if (!/^[a-z0-9]+$/i.test(location)) reader.fail('keyVaultLocation', `"${location}" is not an Azure region name; use the short form, e.g. westeurope or usgovvirginia`);
  const name = reader.text('keyVaultName');
  if (name !== undefined && !vaultNamePattern.test(name)) {
    reader.fail('keyVaultName', `"${name}" is not a valid vault name: 3-24 letters, digits and single hyphens, starting with a letter; or leave it unset for a generated name`);
  }
  const secretName = reader.text('keyVaultSecretName') ?? 'o365-connector-client-secret';
  if (!vaultSecretNamePattern.test(secretName)) reader.fail('keyVaultSecretName', `"${secretName}" is not a valid secret name: 1-127 letters, digits and hyphens`);
  const secretReaders: SecretReader[] = [];
  for (const entry of reader.list('keyVaultSecretReaders', '<object-id>,Group:<object-id>') ?? []) {
    const [type, objectId] = entry.includes(':') ? entry.split(':', 2) : ['ServicePrincipal', entry];
    if (!(principalTypes as readonly string[]).includes(type!) || !guid.test(objectId!)) {
      reader.fail('keyVaultSecretReaders', `"${entry}" is not an object id (GUID) of a service principal or managed identity, nor User:<GUID> or Group:<GUID>`);
    } else {
      secretReaders.push({ objectId: objectId!, principalType: type as SecretReader['principalType'] });
    }
  }
  return {
    resourceGroupName: resourceGroupName ?? '', location: location ?? '', name, secretName, secretReaders,
    purgeProtection: reader.flag('keyVaultPurgeProtection', true),
  };
}

function subscriptionAlias(reader: ConfigReader, displayName: string): SubscriptionAliasConfig | undefined {
  const billingScope = reader.text('billingScope');
  if (billingScope === undefined) {
    for (const key of ['subscriptionAliasName', 'subscriptionDisplayName', 'subscriptionWorkload'] as const) {
      if (reader.text(key) !== undefined) reader.fail(key, `is set but no billingScope is configured; set ${configNamespace}:billingScope, or remove ${key}`);
    }
    return undefined;
  }
  if (!billingScopePattern.test(billingScope)) {
    reader.fail('billingScope', 'must look like /providers/Microsoft.Billing/billingAccounts/<id>/enrollmentAccounts/<id> (EA) or /providers/Microsoft.Billing/billingAccounts/<id>/billingProfiles/<id>/invoiceSections/<id> (MCA)');
  }
  const aliasName = reader.text('subscriptionAliasName') ?? 'o365-connector-logging';
  if (!aliasNamePattern.test(aliasName)) reader.fail('subscriptionAliasName', `"${aliasName}" is not a valid alias name: up to 63 letters, digits, _ . -`);
  return {
    aliasName,
    billingScope,
    displayName: reader.text('subscriptionDisplayName') ?? `${displayName} logging`,
    workload: reader.oneOf('subscriptionWorkload', subscriptionWorkloads, 'Production'),
  };
}

const azureadEnvironments: Record<CloudName, readonly string[]> = {
  commercial: ['global', 'public'], gcc: ['global', 'public'], gcchigh: ['usgovernmentl4', 'usgovernment'], dod: ['usgovernmentl5', 'dod'], china: ['china'],
};

/**
 * Reads and validates the whole configuration, throwing one InfraConfigError that lists every bad key.
 * `now` only decides whether a configured certificate has already expired.
 */
export function readConfig(source: ConfigSource = stackConfig(), now: Date = new Date()): InfraConfig {
  const reader = new ConfigReader(source);
  reader.unknownKeys();

  const rawName = reader.raw('displayName');
  let displayName = rawName?.trim() ?? 'o365-connector';
  if (rawName !== undefined && displayName === '') {
    reader.fail('displayName', `must not be empty; pulumi config set ${configNamespace}:displayName "SOC audit collector"`);
    displayName = 'o365-connector';
  } else if (displayName.length > 120) {
    reader.fail('displayName', `is ${displayName.length} characters; use at most 120`);
  }

  const cloud = reader.oneOf('cloud', cloudNames, 'commercial');
  const permissions = permissionList(reader, 'permissions', permissionNames);
  if (!permissions.includes('ActivityFeed.Read')) {
    reader.fail('permissions', 'must include ActivityFeed.Read: without it no audit content can be read');
  }
  const delegatedPermissions = permissionList(reader, 'delegatedPermissions', permissions);
  const beyond = delegatedPermissions.filter((name) => !permissions.includes(name));
  if (beyond.length > 0) {
    reader.fail('delegatedPermissions', `${beyond.join(', ')} is not in permissions; delegated permissions must be a subset of ${configNamespace}:permissions (or "none")`);
  }

  const credential = reader.oneOf('credential', credentialKinds, 'secret');
  const secretLifetimeDays = reader.integer('secretLifetimeDays', 180, 1, 730, 'use 1 to 730 days (Microsoft recommends less than 12 months)');
  const secretRotation = reader.integer('secretRotation', 0, 0, 1_000_000, 'use 0 or a positive generation number, one more than the current to rotate');
  const certificatePem = certificate(reader, credential, now);

  const publisherId = reader.text('publisherId');
  if (publisherId !== undefined && !guid.test(publisherId)) {
    reader.fail('publisherId', `"${publisherId}" is not a GUID; leave it unset to use the tenant id`);
  }

  const vault = keyVault(reader, credential);
  const alias = subscriptionAlias(reader, displayName);

  const azureadSettings = reader.namespace('azuread');
  const environment = azureadSettings['environment'];
  if (environment !== undefined && !azureadEnvironments[cloud].includes(environment)) {
    reader.fail('azuread:environment', `"${environment}" does not match ${configNamespace}:cloud ${cloud}, which sets it to ${azureadEnvironments[cloud][0]} itself; pulumi config rm azuread:environment`);
  }
  const azureNativeSettings = reader.namespace('azure-native');

  if (reader.problems.length > 0) throw new InfraConfigError(reader.problems);
  return {
    displayName, cloud, permissions, delegatedPermissions, credential, secretLifetimeDays, secretRotation, certificatePem,
    publisherId, keyVault: vault, subscriptionAlias: alias, azureadSettings, azureNativeSettings,
  };
}
