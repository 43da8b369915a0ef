// Typed, validated stack configuration: the one place for defaults and for the messages a user sees. Each key's
// text goes through a zod schema; rules between keys (what requires what) are checked after, and every problem
// is reported at once.
import { X509Certificate } from 'node:crypto';
import * as pulumi from '@pulumi/pulumi';
import { z } from 'zod';
import { cloudNames, clouds, type CloudName } from '../contract/clouds.ts';
import { guidPattern as guid } from '../contract/stack-outputs.ts';

export const configNamespace = 'o365-connector';

/** The Office 365 Management APIs permissions this kit knows; the default requests all of them. */
export const permissionNames = ['ActivityFeed.Read', 'ActivityFeed.ReadDlp', 'ServiceHealth.Read'] as const;
export type PermissionName = (typeof permissionNames)[number];

export const credentialKinds = ['secret', 'certificate', 'both', 'federated', 'managedIdentity'] as const;
export type CredentialKind = (typeof credentialKinds)[number];

/** A workload Entra ID lets sign in as the app without a secret: a token of `issuer` for `subject` with `audience`. */
export interface FederatedIdentity {
  readonly issuer: string;
  readonly subject: string;
  readonly audience: string;
}
/** The audience Entra ID expects by convention; an app holds at most 20 federated identity credentials. */
export const tokenExchangeAudience = 'api://AzureADTokenExchange';
export const maxFederatedIdentities = 20;

export const subscriptionWorkloads = ['Production', 'DevTest'] as const;

/**
 * How this stack provisions: `single` registers a single-tenant app and consents to it in its own tenant; `home`
 * registers the multi-tenant app in the provider's tenant; `customer` consents to the home stack's app in a customer
 * tenant and writes that tenant's outputs file.
 */
export const modes = ['single', 'home', 'customer'] as const;
export type Mode = (typeof modes)[number];

/** A customer stack either grants admin consent itself or only checks that the customer's admin granted it. */
export const consentKinds = ['grant', 'verify'] as const;
export type ConsentKind = (typeof consentKinds)[number];

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
  readonly mode: Mode;
  /** The home stack (`org/project/stack`) a customer stack takes the app and its credentials from. */
  readonly homeStack: string | undefined;
  /** Customer stacks only: grant admin consent, or verify the consent a customer's admin gave. */
  readonly consent: ConsentKind;
  readonly displayName: string;
  readonly cloud: CloudName;
  /** Requested as application permissions (Role) and consented with app role assignments. */
  readonly permissions: readonly PermissionName[];
  /** Requested as delegated permissions (Scope) and consented with one delegated grant; a subset of `permissions`. */
  readonly delegatedPermissions: readonly PermissionName[];
  /**
   * Service health from Microsoft Graph: the app also requests the Graph application permissions ServiceHealth.Read.All
   * and ServiceMessage.Read.All, with admin consent, and the outputs list ServiceHealth. Off: nothing of Graph.
   */
  readonly serviceHealth: boolean;
  /**
   * History beyond the Management Activity API's 7 days, from the audit search: the app also requests the Graph
   * application permission AuditLogsQuery.Read.All, with admin consent, and the outputs say auditSearch true. Only
   * where the cloud has the audit search (clouds.ts); a customer stack's comes from its home stack.
   */
  readonly auditSearch: boolean;
  readonly credential: CredentialKind;
  /** credential federated: the workloads that sign in as the app (one federated identity credential each). */
  readonly federatedIdentities: readonly FederatedIdentity[];
  /** credential managedIdentity: the service principal (object id) of the managed identity the roles are assigned to. */
  readonly managedIdentityPrincipalId: string | undefined;
  readonly secretLifetimeDays: number;
  /** Bump by one to rotate the client secret; the previous secret stays valid until the next bump. */
  readonly secretRotation: number;
  /** Public certificate (PEM) registered as a credential when `credential` is certificate or both. */
  readonly certificatePem: string | undefined;
  readonly publisherId: string | undefined;
  readonly keyVault: KeyVaultConfig | undefined;
  readonly subscriptionAlias: SubscriptionAliasConfig | undefined;
  /** The Microsoft Sentinel destination (sentinelWorkspace): a table, a data collection rule and endpoint, the role to send. */
  readonly sentinel: SentinelConfig | undefined;
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

const billingScopePattern = /^\/providers\/Microsoft\.Billing\/billingAccounts\/[^/]+(\/(billingProfiles|enrollmentAccounts|customers)\/[^/]+)*(\/invoiceSections\/[^/]+)?$/i;
const vaultNamePattern = /^[a-zA-Z](?!.*--)[a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$/;
const vaultSecretNamePattern = /^[0-9a-zA-Z-]{1,127}$/;
const resourceGroupPattern = /^[-\w.()]{0,89}[-\w()]$/u;
const aliasNamePattern = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;
const secretReaderPattern = new RegExp(`^(?:(${principalTypes.join('|')}):)?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$`);

// --- Microsoft Sentinel (the destination of the Sentinel sink) ---

/** The stack's Sentinel settings: the workspace (its resource id, read into its parts) and who may send. */
export interface SentinelConfig {
  /** The Log Analytics workspace's resource id, as given. */
  readonly workspaceResourceId: string;
  readonly subscriptionId: string;
  readonly resourceGroupName: string;
  readonly workspaceName: string;
  /** Object id of the principal given Monitoring Metrics Publisher on the rule instead of the app's service principal (a managed identity). */
  readonly principalId: string | undefined;
}

const workspacePattern = /^\/subscriptions\/([0-9a-fA-F-]{36})\/resourceGroups\/([-\w.()]{1,90})\/providers\/Microsoft\.OperationalInsights\/workspaces\/([A-Za-z0-9][A-Za-z0-9-]{2,62})\/?$/i;

const sentinelKeys = ['sentinelWorkspace', 'sentinelPrincipalId'] as const;

const sentinelKeySchemas = {
  sentinelWorkspace: z.string().regex(workspacePattern, {
    error: (issue) => `"${String(issue.input)}" is not a Log Analytics workspace's resource id; use /subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.OperationalInsights/workspaces/<name> (the workspace's JSON view in the portal shows it)`,
  }),
  sentinelPrincipalId: z.string().regex(guid, { error: (issue) => `"${String(issue.input)}" is not an object id (GUID); leave it unset to give the role to the app's service principal` }),
};

/** Single stacks only: a customer tenant's connector signs in to the customer's tenant, which the workspace's subscription does not trust. */
function sentinelSettings(reader: ConfigReader, mode: Mode): SentinelConfig | undefined {
  if (!reader.isSet('sentinelWorkspace')) {
    if (reader.isSet('sentinelPrincipalId')) reader.fail('sentinelPrincipalId', `is set but no sentinelWorkspace is configured; set ${configNamespace}:sentinelWorkspace, or remove sentinelPrincipalId`);
    return undefined;
  }
  if (mode !== 'single') {
    reader.fail('sentinelWorkspace', `is read in single stacks only: the connector of a ${mode === 'home' ? 'customer tenant of this home stack' : 'customer tenant'} signs in to that tenant, which a workspace in your subscription does not trust; pulumi config rm ${configNamespace}:sentinelWorkspace`);
    return undefined;
  }
  const workspaceResourceId = reader.read('sentinelWorkspace', undefined);
  const parts = workspaceResourceId === undefined ? undefined : workspacePattern.exec(workspaceResourceId);
  if (!workspaceResourceId || !parts) return undefined;
  return {
    workspaceResourceId: workspaceResourceId.replace(/\/$/, ''), subscriptionId: parts[1]!, resourceGroupName: parts[2]!, workspaceName: parts[3]!,
    principalId: reader.read('sentinelPrincipalId', undefined),
  };
}
// --- end of Microsoft Sentinel ---

/** Every key this program reads; anything else under `o365-connector:` is a typo worth stopping for. */
export const knownKeys = [
  'mode', 'homeStack', 'consent', 'displayName', 'cloud', 'permissions', 'delegatedPermissions', 'credential', 'secretLifetimeDays', 'secretRotation',
  'certificatePem', 'publisherId', 'keyVault', 'keyVaultResourceGroup', 'keyVaultLocation', 'keyVaultName',
  'keyVaultSecretName', 'keyVaultSecretReaders', 'keyVaultPurgeProtection', 'billingScope', 'subscriptionAliasName',
  'subscriptionDisplayName', 'subscriptionWorkload', 'serviceHealth', 'federatedIdentities', 'managedIdentityPrincipalId',
  'auditSearch',
  ...sentinelKeys,
] as const;
type Key = (typeof knownKeys)[number];

// The schemas of the keys' stored text (trimmed), each with the message a user sees.
const quoted = (value: unknown) => `"${String(value)}"`;

function wholeNumber(min: number, max: number, hint: string) {
  const outOfRange = { error: (issue: { input?: unknown }) => `${String(issue.input)} is out of range; ${hint}` };
  return z.string()
    .regex(/^-?\d+$/, { error: (issue) => `${quoted(issue.input)} is not a whole number; ${hint}` })
    .transform(Number)
    .pipe(z.number().min(min, outOfRange).max(max, outOfRange));
}

const trueOrFalse = (key: Key) => z.enum(['true', 'false'], { error: (issue) => `${quoted(issue.input)} is not true or false; pulumi config set ${configNamespace}:${key} true` })
  .transform((value) => value === 'true');

const oneOf = <const T extends readonly [string, ...string[]]>(values: T) => z.enum(values, { error: (issue) => `unknown value ${quoted(issue.input)}; use one of ${values.join(', ')}` });

const matching = (pattern: RegExp, message: (value: string) => string) => z.string().regex(pattern, { error: (issue) => message(String(issue.input)) });

function parsedJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** A list given as `a,b`, as a JSON array, or as YAML list in the stack file (which Pulumi hands over as JSON). */
function list(key: Key, example: string) {
  const notAList = `not a list; set it like: pulumi config set ${configNamespace}:${key} ${example}`;
  return z.string()
    .transform((raw): unknown => (/^\s*[[{]/.test(raw) ? parsedJson(raw) : raw.split(',')))
    .pipe(z.array(z.string({ error: notAList }), { error: notAList }))
    .transform((items) => items.map((item) => item.trim()).filter((item) => item !== ''));
}

const isPermission = (name: string): name is PermissionName => (permissionNames as readonly string[]).includes(name);

/** Permission names in the kit's order; every unknown one named in a single message. */
const permissionList = (key: 'permissions' | 'delegatedPermissions') => list(key, 'ActivityFeed.Read,ServiceHealth.Read')
  .refine((names) => names.every(isPermission), {
    error: (issue) => `unknown permission ${(issue.input as string[]).filter((name) => !isPermission(name)).map(quoted).join(', ')}; use any of ${permissionNames.join(', ')}`,
  })
  .transform((names) => permissionNames.filter((name) => names.includes(name)));

const setCertificate = `pulumi config set ${configNamespace}:certificatePem -- "$(cat cert.pem)"`;

/** A public certificate (PEM) that has not expired by `now`. */
const certificatePem = (now: Date) => z.string()
  .refine((pem) => !/PRIVATE KEY-----/.test(pem), { error: 'holds a private key; give only the public certificate (-----BEGIN CERTIFICATE-----) and keep the key on the connector host', abort: true })
  .transform((pem, ctx) => {
    let parsed: X509Certificate;
    try {
      parsed = new X509Certificate(pem);
    } catch {
      ctx.addIssue({ code: 'custom', message: `is not a PEM certificate (expected -----BEGIN CERTIFICATE-----); ${setCertificate}` });
      return z.NEVER;
    }
    const expiry = new Date(parsed.validToDate);
    if (expiry.getTime() <= now.getTime()) {
      ctx.addIssue({ code: 'custom', message: `the certificate expired on ${expiry.toISOString()}; issue a new one and set it again` });
      return z.NEVER;
    }
    return pem;
  });

/** `<guid>` (a service principal or managed identity), `User:<guid>` or `Group:<guid>`. */
const secretReader = matching(secretReaderPattern, (entry) => `"${entry}" is not an object id (GUID) of a service principal or managed identity, nor User:<GUID> or Group:<GUID>`)
  .transform((entry): SecretReader => {
    const [, type, objectId] = secretReaderPattern.exec(entry)!;
    return { objectId: objectId!, principalType: (type ?? 'ServicePrincipal') as SecretReader['principalType'] };
  });

const setFederated = `pulumi config set ${configNamespace}:federatedIdentities '[{"issuer":"https://oidc.example/issuer","subject":"system:serviceaccount:soc:o365-connector"}]'`;

/** A JSON list of `{issuer, subject, audience?}`: https issuers, subjects not empty, at most 20; every bad entry named. */
const federatedIdentities = z.string().transform((raw, ctx): FederatedIdentity[] => {
  const list = parsedJson(raw);
  if (!Array.isArray(list)) {
    ctx.addIssue({ code: 'custom', message: `is not a JSON list of {"issuer","subject"}; ${setFederated}` });
    return z.NEVER;
  }
  if (list.length === 0) ctx.addIssue({ code: 'custom', message: `is empty: name at least one workload; ${setFederated}` });
  if (list.length > maxFederatedIdentities) ctx.addIssue({ code: 'custom', message: `has ${list.length} entries; an app holds at most ${maxFederatedIdentities} federated identity credentials` });
  const entries = list.map((entry: unknown, index): FederatedIdentity => {
    const at = `entry ${index + 1}`;
    const fields = typeof entry === 'object' && entry !== null ? entry as Record<string, unknown> : {};
    const issuer = typeof fields['issuer'] === 'string' ? fields['issuer'].trim() : '';
    const subject = typeof fields['subject'] === 'string' ? fields['subject'].trim() : '';
    const audience = typeof fields['audience'] === 'string' && fields['audience'].trim() !== '' ? fields['audience'].trim() : tokenExchangeAudience;
    const unknown = Object.keys(fields).filter((key) => !['issuer', 'subject', 'audience'].includes(key));
    if (unknown.length > 0) ctx.addIssue({ code: 'custom', message: `${at} has unknown field ${unknown.map(quoted).join(', ')}; use issuer, subject and audience` });
    if (URL.parse(issuer)?.protocol !== 'https:') ctx.addIssue({ code: 'custom', message: `${at}: issuer ${quoted(issuer)} must be an https URL (the OIDC issuer Entra ID fetches the signing keys from)` });
    if (subject === '') ctx.addIssue({ code: 'custom', message: `${at}: subject must not be empty (e.g. system:serviceaccount:<namespace>:<service account>, or repo:<org>/<repo>:environment:<name>)` });
    return { issuer, subject, audience };
  });
  const seen = new Set<string>();
  for (const entry of entries) {
    const key = `${entry.issuer} ${entry.subject} ${entry.audience}`;
    if (seen.has(key)) ctx.addIssue({ code: 'custom', message: `names issuer ${quoted(entry.issuer)} with subject ${quoted(entry.subject)} twice` });
    seen.add(key);
  }
  return entries;
});

/** `org/project/stack`: fully qualified, so the reference means the same stack whichever backend or directory runs it. */
const stackNamePattern = /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/;

/** Each key's schema; cross-key rules (what requires what) are in readConfig. */
const keySchemas = (now: Date) => ({
  mode: oneOf(modes),
  homeStack: matching(stackNamePattern, (value) => `"${value}" is not a fully qualified stack name; use org/project/stack, e.g. pulumi config set ${configNamespace}:homeStack acme/o365-connector/home`),
  consent: oneOf(consentKinds),
  displayName: z.string()
    .min(1, { error: `must not be empty; pulumi config set ${configNamespace}:displayName "SOC audit collector"` })
    .max(120, { error: (issue) => `is ${String(issue.input).length} characters; use at most 120` }),
  cloud: oneOf(cloudNames),
  permissions: permissionList('permissions'),
  // "none" (or an empty JSON list) requests no delegated scope at all.
  delegatedPermissions: z.preprocess((raw) => (raw === 'none' ? '[]' : raw), permissionList('delegatedPermissions')),
  credential: oneOf(credentialKinds),
  federatedIdentities,
  managedIdentityPrincipalId: matching(guid, (value) => `"${value}" is not an object id (GUID): use the managed identity's principal id (az identity show --query principalId, or az vm identity show --query principalId)`),
  secretLifetimeDays: wholeNumber(1, 730, 'use 1 to 730 days (Microsoft recommends less than 12 months)'),
  secretRotation: wholeNumber(0, 1_000_000, 'use 0 or a positive generation number, one more than the current to rotate'),
  certificatePem: certificatePem(now),
  publisherId: matching(guid, (value) => `"${value}" is not a GUID; leave it unset to use the tenant id`),
  keyVault: trueOrFalse('keyVault'),
  keyVaultResourceGroup: matching(resourceGroupPattern, (value) => `"${value}" is not a resource group name (1-90 letters, digits, - _ . ( ), not ending in .)`),
  keyVaultLocation: matching(/^[a-z0-9]+$/i, (value) => `"${value}" is not an Azure region name; use the short form, e.g. westeurope or usgovvirginia`),
  keyVaultName: matching(vaultNamePattern, (value) => `"${value}" is not a valid vault name: 3-24 letters, digits and single hyphens, starting with a letter; or leave it unset for a generated name`),
  keyVaultSecretName: matching(vaultSecretNamePattern, (value) => `"${value}" is not a valid secret name: 1-127 letters, digits and hyphens`),
  keyVaultSecretReaders: list('keyVaultSecretReaders', '<object-id>,Group:<object-id>').pipe(z.array(secretReader)),
  keyVaultPurgeProtection: trueOrFalse('keyVaultPurgeProtection'),
  billingScope: matching(billingScopePattern, () => 'must look like /providers/Microsoft.Billing/billingAccounts/<id>/enrollmentAccounts/<id> (EA) or /providers/Microsoft.Billing/billingAccounts/<id>/billingProfiles/<id>/invoiceSections/<id> (MCA)'),
  subscriptionAliasName: matching(aliasNamePattern, (value) => `"${value}" is not a valid alias name: up to 63 letters, digits, _ . -`),
  subscriptionDisplayName: z.string(),
  subscriptionWorkload: oneOf(subscriptionWorkloads),
  serviceHealth: trueOrFalse('serviceHealth'),
  auditSearch: trueOrFalse('auditSearch'),
  ...sentinelKeySchemas,
}) satisfies Record<Key, z.ZodType>;
type KeySchemas = ReturnType<typeof keySchemas>;
type ValueOf<K extends Key> = z.output<KeySchemas[K]>;

const prefix = `${configNamespace}:`;
/** A key of our namespace that this program does not read, named with the nearest known one when it is a case slip. */
const knownKey = z.enum(knownKeys, {
  error: (issue) => {
    const key = `${prefix}${String(issue.input)}`;
    const near = knownKeys.find((known) => known.toLowerCase() === String(issue.input).toLowerCase());
    return near ? `unknown key; did you mean ${prefix}${near}? (pulumi config rm ${key})` : `unknown key; known keys are ${knownKeys.join(', ')} (pulumi config rm ${key})`;
  },
});

/** Reads one namespace's keys through their schemas while collecting every problem, so the user sees them all at once. */
class ConfigReader {
  readonly problems: ConfigProblem[] = [];
  readonly #source: ConfigSource;
  readonly #schemas: KeySchemas;
  constructor(source: ConfigSource, now: Date) {
    this.#source = source;
    this.#schemas = keySchemas(now);
  }

  fail(key: Key | string, message: string): undefined {
    this.problems.push({ key: key.includes(':') ? key : `${prefix}${key}`, message });
    return undefined;
  }

  isSet(key: Key): boolean {
    return this.#text(key) !== undefined;
  }

  /** Stored text, trimmed; blank counts as unset unless `keepBlank` (then the schema judges it). */
  #text(key: Key, keepBlank = false): string | undefined {
    const value = this.#source.get(`${prefix}${key}`)?.trim();
    return value === '' && !keepBlank ? undefined : value;
  }

  /** The key's value through its schema; unset gives `fallback`; invalid records each problem once and gives `fallback`. */
  read<K extends Key, F extends ValueOf<K> | undefined>(key: K, fallback: F, options: { keepBlank?: boolean } = {}): ValueOf<K> | F {
    const text = this.#text(key, options.keepBlank);
    if (text === undefined) return fallback;
    const parsed = this.#schemas[key].safeParse(text);
    if (parsed.success) return parsed.data as ValueOf<K>;
    for (const message of new Set(parsed.error.issues.map((issue) => issue.message))) this.fail(key, message);
    return fallback;
  }

  unknownKeys(): void {
    for (const key of this.#source.keys()) {
      if (!key.startsWith(prefix)) continue;
      const parsed = knownKey.safeParse(key.slice(prefix.length));
      if (!parsed.success) this.fail(key, parsed.error.issues[0]!.message);
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

function certificate(reader: ConfigReader, credential: CredentialKind): string | undefined {
  if (credential === 'secret' || credential === 'federated' || credential === 'managedIdentity') {
    if (reader.isSet('certificatePem')) reader.fail('certificatePem', `is set but credential is "${credential}"; pulumi config set ${configNamespace}:credential both (or certificate), or remove certificatePem`);
    return undefined;
  }
  if (!reader.isSet('certificatePem')) return reader.fail('certificatePem', `required when credential is ${credential}; ${setCertificate}`);
  return reader.read('certificatePem', undefined);
}

function keyVault(reader: ConfigReader, credential: CredentialKind): KeyVaultConfig | undefined {
  if (!reader.read('keyVault', false)) {
    for (const key of ['keyVaultResourceGroup', 'keyVaultLocation', 'keyVaultName', 'keyVaultSecretName', 'keyVaultSecretReaders'] as const) {
      if (reader.isSet(key)) reader.fail(key, `is set but keyVault is not enabled; pulumi config set ${configNamespace}:keyVault true, or remove ${key}`);
    }
    return undefined;
  }
  if (credential !== 'secret' && credential !== 'both') reader.fail('keyVault', `holds the client secret, but credential is "${credential}"${credential === 'certificate' ? `; pulumi config set ${configNamespace}:credential both, or set keyVault false` : ', which has none; set keyVault false'}`);
  if (!reader.isSet('keyVaultResourceGroup')) reader.fail('keyVaultResourceGroup', `required when keyVault is true: an existing resource group; pulumi config set ${configNamespace}:keyVaultResourceGroup rg-soc`);
  const resourceGroupName = reader.read('keyVaultResourceGroup', undefined);
  if (!reader.isSet('keyVaultLocation')) reader.fail('keyVaultLocation', `required when keyVault is true; pulumi config set ${configNamespace}:keyVaultLocation westeurope`);
  const location = reader.read('keyVaultLocation', undefined);
  const name = reader.read('keyVaultName', undefined);
  const secretName = reader.read('keyVaultSecretName', 'o365-connector-client-secret');
  const secretReaders = reader.read('keyVaultSecretReaders', []);
  return {
    resourceGroupName: resourceGroupName ?? '', location: location ?? '', name, secretName, secretReaders,
    purgeProtection: reader.read('keyVaultPurgeProtection', true),
  };
}

function subscriptionAlias(reader: ConfigReader, displayName: string): SubscriptionAliasConfig | undefined {
  if (!reader.isSet('billingScope')) {
    for (const key of ['subscriptionAliasName', 'subscriptionDisplayName', 'subscriptionWorkload'] as const) {
      if (reader.isSet(key)) reader.fail(key, `is set but no billingScope is configured; set ${configNamespace}:billingScope, or remove ${key}`);
    }
    return undefined;
  }
  const billingScope = reader.read('billingScope', '');
  const aliasName = reader.read('subscriptionAliasName', 'o365-connector-logging');
  return {
    aliasName,
    billingScope,
    displayName: reader.read('subscriptionDisplayName', `${displayName} logging`),
    workload: reader.read('subscriptionWorkload', 'Production'),
  };
}

/**
 * The settings of the credentials without a secret: federated needs its workloads, managedIdentity its identity (and
 * no app at all, so no home stack); each refused where its credential is not chosen, as are a secret's settings there.
 */
function secretlessSettings(reader: ConfigReader, credential: CredentialKind, mode: Mode): Pick<InfraConfig, 'federatedIdentities' | 'managedIdentityPrincipalId'> {
  const unset = (key: Key, reason: string) => reader.fail(key, `${reason}; pulumi config rm ${configNamespace}:${key}`);
  if (credential !== 'federated' && reader.isSet('federatedIdentities')) unset('federatedIdentities', `is set but credential is "${credential}"; pulumi config set ${configNamespace}:credential federated, or`);
  if (credential !== 'managedIdentity' && reader.isSet('managedIdentityPrincipalId')) unset('managedIdentityPrincipalId', `is set but credential is "${credential}"; pulumi config set ${configNamespace}:credential managedIdentity, or`);
  if (credential === 'federated' || credential === 'managedIdentity') {
    for (const key of ['secretLifetimeDays', 'secretRotation'] as const) if (reader.isSet(key)) unset(key, `is not read when credential is ${credential}: there is no secret`);
  }
  if (credential === 'federated' && !reader.isSet('federatedIdentities')) reader.fail('federatedIdentities', `required when credential is federated: the workloads that sign in as the app; ${setFederated}`);
  if (credential === 'managedIdentity') {
    if (!reader.isSet('managedIdentityPrincipalId')) reader.fail('managedIdentityPrincipalId', `required when credential is managedIdentity: the object id of the identity's service principal; pulumi config set ${configNamespace}:managedIdentityPrincipalId <principal id>`);
    if (mode === 'home') reader.fail('credential', `managedIdentity registers no app for customer tenants to consent to; in a home stack use secret, certificate or federated (pulumi config set ${configNamespace}:credential federated)`);
  }
  return {
    federatedIdentities: credential === 'federated' ? reader.read('federatedIdentities', []) : [],
    managedIdentityPrincipalId: credential === 'managedIdentity' ? reader.read('managedIdentityPrincipalId', undefined) : undefined,
  };
}

const azureadEnvironments: Record<CloudName, readonly string[]> = {
  commercial: ['global', 'public'], gcc: ['global', 'public'], gcchigh: ['usgovernmentl4', 'usgovernment'], dod: ['usgovernmentl5', 'dod'], china: ['china'],
};

const vaultReason = 'the secret is the home stack\'s; keep it in a vault there';
const aliasReason = 'a customer stack creates nothing but the consent';
/** What a customer stack takes from its home stack, or decides by itself: setting it there would be ignored. */
const notInCustomerStack: Readonly<Partial<Record<Key, string>>> = {
  displayName: 'the app\'s name comes from the home stack',
  permissions: 'the permissions are the home stack\'s app\'s',
  serviceHealth: 'the Graph permissions are the home stack\'s app\'s',
  auditSearch: 'the Graph permissions are the home stack\'s app\'s',
  delegatedPermissions: 'the permissions are the home stack\'s app\'s',
  credential: 'the credentials come from the home stack',
  certificatePem: 'the credentials come from the home stack',
  federatedIdentities: 'the credentials come from the home stack (its app\'s federated identity credentials)',
  managedIdentityPrincipalId: 'a customer stack consents to the home stack\'s app',
  secretLifetimeDays: 'the secret is the home stack\'s; set it there',
  secretRotation: 'rotate in the home stack, then run pulumi up on each customer stack',
  publisherId: 'a customer stack sends the customer tenant\'s id (its own throttling bucket)',
  keyVault: vaultReason, keyVaultResourceGroup: vaultReason, keyVaultLocation: vaultReason, keyVaultName: vaultReason,
  keyVaultSecretName: vaultReason, keyVaultSecretReaders: vaultReason, keyVaultPurgeProtection: vaultReason,
  billingScope: aliasReason, subscriptionAliasName: aliasReason, subscriptionDisplayName: aliasReason, subscriptionWorkload: aliasReason,
};

/** The mode, and the keys that only make sense in some modes: one line per key set where it does not belong. */
function modeSettings(reader: ConfigReader): { mode: Mode; homeStack: string | undefined; consent: ConsentKind } {
  const problemsBefore = reader.problems.length;
  const mode = reader.read('mode', 'single');
  // A mode that did not parse is its one line: checks that depend on the mode would only mislead.
  if (reader.problems.length > problemsBefore) return { mode, homeStack: undefined, consent: 'grant' };
  if (mode !== 'customer') {
    for (const key of ['homeStack', 'consent'] as const) {
      if (reader.isSet(key)) reader.fail(key, `only a customer stack reads it, but mode is ${mode}; pulumi config set ${configNamespace}:mode customer, or pulumi config rm ${configNamespace}:${key}`);
    }
    if (mode === 'home' && reader.isSet('publisherId')) {
      reader.fail('publisherId', `is not read in a home stack: each customer stack sends its own tenant's id (its own throttling bucket); pulumi config rm ${configNamespace}:publisherId`);
    }
    return { mode, homeStack: undefined, consent: 'grant' };
  }
  if (!reader.isSet('homeStack')) reader.fail('homeStack', `required when mode is customer: the home stack that registered the app; pulumi config set ${configNamespace}:homeStack acme/o365-connector/home`);
  const homeStack = reader.read('homeStack', undefined);
  const consent = reader.read('consent', 'grant');
  for (const [key, reason] of Object.entries(notInCustomerStack)) {
    if (reader.isSet(key as Key)) reader.fail(key, `is not read in a customer stack: ${reason}; pulumi config rm ${configNamespace}:${key}`);
  }
  return { mode, homeStack, consent };
}

type AppSettings = Omit<InfraConfig, 'mode' | 'homeStack' | 'consent' | 'cloud' | 'auditSearch' | 'azureadSettings' | 'azureNativeSettings'>;

const appDefaults: AppSettings = {
  displayName: 'o365-connector', permissions: [...permissionNames], delegatedPermissions: [...permissionNames], serviceHealth: true, credential: 'secret',
  federatedIdentities: [], managedIdentityPrincipalId: undefined,
  secretLifetimeDays: 180, secretRotation: 0, certificatePem: undefined, publisherId: undefined, keyVault: undefined, subscriptionAlias: undefined,
  sentinel: undefined,
};

/** The app registration's settings (single and home stacks). */
function appSettings(reader: ConfigReader, mode: Mode): AppSettings {
  const displayName = reader.read('displayName', appDefaults.displayName, { keepBlank: true });
  const permissions = reader.read('permissions', [...permissionNames]);
  if (!permissions.includes('ActivityFeed.Read')) {
    reader.fail('permissions', 'must include ActivityFeed.Read: without it no audit content can be read');
  }
  const delegatedPermissions = reader.read('delegatedPermissions', [...permissions]);
  const beyond = delegatedPermissions.filter((name) => !permissions.includes(name));
  if (beyond.length > 0) {
    reader.fail('delegatedPermissions', `${beyond.join(', ')} is not in permissions; delegated permissions must be a subset of ${configNamespace}:permissions (or "none")`);
  }
  const credential = reader.read('credential', appDefaults.credential);
  return {
    displayName, permissions, delegatedPermissions, credential,
    ...secretlessSettings(reader, credential, mode),
    serviceHealth: reader.read('serviceHealth', appDefaults.serviceHealth),
    secretLifetimeDays: reader.read('secretLifetimeDays', appDefaults.secretLifetimeDays),
    secretRotation: reader.read('secretRotation', appDefaults.secretRotation),
    certificatePem: certificate(reader, credential),
    publisherId: reader.read('publisherId', undefined),
    keyVault: keyVault(reader, credential),
    subscriptionAlias: subscriptionAlias(reader, displayName),
    sentinel: undefined,
  };
}

/**
 * The audit search, on by default where the cloud has it (Microsoft Graph's audit log query API is global-service
 * only), refused where it has not. A customer stack does not read it (its home stack's app requests the permission):
 * the cloud's default stands in, as appDefaults do for the other app settings.
 */
function auditSearch(reader: ConfigReader, mode: Mode, cloud: CloudName): boolean {
  const available = clouds[cloud].auditSearch;
  if (mode === 'customer') return available;
  const wanted = reader.read('auditSearch', available);
  if (wanted && !available) {
    reader.fail('auditSearch', `the audit search (Microsoft Graph's audit log query API, history beyond 7 days) does not exist in the ${cloud} cloud; pulumi config rm ${configNamespace}:auditSearch`);
  }
  return wanted && available;
}

/**
 * Reads and validates the whole configuration, throwing one InfraConfigError that lists every bad key.
 * `now` only decides whether a configured certificate has already expired.
 */
export function readConfig(source: ConfigSource = stackConfig(), now: Date = new Date()): InfraConfig {
  const reader = new ConfigReader(source, now);
  reader.unknownKeys();
  const { mode, homeStack, consent } = modeSettings(reader);

  const cloud = reader.read('cloud', 'commercial');
  // A customer stack takes the app's settings from its home stack: its own were refused above, and the defaults stand in.
  const app = mode === 'customer' ? appDefaults : appSettings(reader, mode);
  const history = auditSearch(reader, mode, cloud);
  const sentinel = sentinelSettings(reader, mode);

  const azureadSettings = reader.namespace('azuread');
  const environment = azureadSettings['environment'];
  if (environment !== undefined && !azureadEnvironments[cloud].includes(environment)) {
    reader.fail('azuread:environment', `"${environment}" does not match ${configNamespace}:cloud ${cloud}, which sets it to ${azureadEnvironments[cloud][0]} itself; pulumi config rm azuread:environment`);
  }
  const azureNativeSettings = reader.namespace('azure-native');

  if (reader.problems.length > 0) throw new InfraConfigError(reader.problems);
  return { mode, homeStack, consent, cloud, ...app, auditSearch: history, sentinel, azureadSettings, azureNativeSettings };
}
