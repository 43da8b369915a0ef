// The contract between a home stack and its customer stacks: what a home stack exports, and how a customer stack
// reads it through a StackReference. One schema for both sides, as connector/config/stack-outputs.ts is for the connector.
import * as pulumi from '@pulumi/pulumi';
import { z } from 'zod';
import { cloudNames, type CloudName } from '../contract/clouds.ts';
import { guidPattern } from '../contract/stack-outputs.ts';
import { configNamespace, permissionNames } from './config.ts';
import { graphPermissionNames } from './graph-permissions.ts';
import { azureadEnvironment } from './providers.ts';

const guid = z.string().regex(guidPattern, { error: 'must be a GUID' });
const permissionList = z.array(z.enum(permissionNames, { error: (issue) => `unknown permission "${String(issue.input)}"` }));

export const homeOutputsSchema = z.object({
  /** Always `home`: a customer stack refuses to consent to a single-tenant app. */
  mode: z.literal('home'),
  connectorName: z.string().min(1),
  clientId: guid,
  /** Which credential the connector uses with the home app; absent from home stacks of before: a secret if one is exported, else a certificate. */
  credential: z.enum(['secret', 'certificate', 'federated'], { error: (issue) => `unknown credential "${String(issue.input)}"` }).optional(),
  /** A Pulumi secret; absent when the home stack's credential is "certificate" or "federated". */
  clientSecret: z.string().min(1).optional(),
  clientSecretExpiry: z.string().min(1).optional(),
  certificateKeyId: z.string().min(1).optional(),
  cloud: z.enum(cloudNames),
  homeTenantId: guid,
  /** Application permissions the app requests: one app role assignment each in every customer tenant. */
  permissions: permissionList.min(1),
  /** Delegated scopes the app requests: one delegated grant in every customer tenant when not empty. */
  delegatedPermissions: permissionList,
  /** Microsoft Graph application permissions the app requests (service health, audit search); absent from home stacks of before: none. */
  graphPermissions: z.array(z.enum(graphPermissionNames, { error: (issue) => `unknown Graph permission "${String(issue.input)}"` })).optional(),
  /** For customers whose own admin approves: opened by a Global Administrator of the customer tenant. */
  adminConsentUrl: z.url({ protocol: /^https$/ }),
  keyVaultUri: z.string().min(1).optional(),
  keyVaultSecretName: z.string().min(1).optional(),
  subscriptionId: guid.optional(),
});
export type HomeOutputs = z.output<typeof homeOutputsSchema>;
/** What a home stack exports, as Pulumi outputs. */
export type HomeStackOutputs = { [K in keyof HomeOutputs]: pulumi.Output<NonNullable<HomeOutputs[K]>> };

/**
 * The tenant-wide admin-consent URL of an app (`{authority}/{organization}/adminconsent?client_id=`): `organization`
 * is a tenant id or verified domain, or `organizations` for whichever tenant the signed-in admin belongs to. The
 * consent covers the permissions the app registration requests.
 */
export function adminConsentUrl(authorityHost: string, organization: string, clientId: string): string {
  return `${authorityHost}/${encodeURIComponent(organization)}/adminconsent?client_id=${encodeURIComponent(clientId)}`;
}

/** The one line a customer stack stops with when its home stack cannot be used. */
export class HomeStackError extends pulumi.RunError {
  constructor(homeStack: string, problem: string) {
    super(`${configNamespace}:homeStack: ${homeStack} ${problem}`);
    this.name = 'HomeStackError';
  }
}

/**
 * Reads and checks the home stack's outputs. Awaited before any resource is declared, so that how many consents a
 * customer stack grants (one per permission) is known when it is planned, and a wrong home stack stops it cleanly.
 */
export async function readHomeStack(reference: pulumi.StackReference, homeStack: string, cloud: CloudName): Promise<HomeOutputs> {
  const keys = Object.keys(homeOutputsSchema.shape) as (keyof HomeOutputs)[];
  const details = await Promise.all(keys.map(async (key) => [key, await reference.getOutputDetails(key)] as const));
  const values = Object.fromEntries(details.flatMap(([key, detail]) => {
    const value: unknown = detail.value ?? detail.secretValue;
    return value === undefined || value === null ? [] : [[key, value]];
  }));
  if (Object.keys(values).length === 0) throw new HomeStackError(homeStack, 'has no outputs; run pulumi up on it first');
  if (values['mode'] !== 'home') {
    throw new HomeStackError(homeStack, `is not a home stack (its app is not multi-tenant): set ${configNamespace}:mode home on it and run pulumi up there, or name the home stack`);
  }
  const parsed = homeOutputsSchema.safeParse(values);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = String(issue.path[0] ?? 'outputs');
    const problem = issue.input === undefined ? 'is missing' : issue.message;
    throw new HomeStackError(homeStack, `exports no usable ${field} (${problem}); run pulumi up on the home stack with this version of the program`);
  }
  const home = parsed.data;
  // An app is known to the tenants of its own Entra ID cloud only; GCC tenants live in the commercial one.
  if (azureadEnvironment[home.cloud] !== azureadEnvironment[cloud]) {
    throw new HomeStackError(homeStack, `registered its app in the ${home.cloud} cloud, but this stack's cloud is ${cloud}; a multi-tenant app works only within one cloud: pulumi config set ${configNamespace}:cloud ${home.cloud}`);
  }
  return home;
}
