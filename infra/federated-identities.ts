import { createHash } from 'node:crypto';
import * as pulumi from '@pulumi/pulumi';
import * as azuread from '@pulumi/azuread';
import type { FederatedIdentity } from './config.ts';

export interface FederatedIdentitiesArgs {
  /** The application's resource id (`/applications/{objectId}`). */
  readonly applicationId: pulumi.Input<string>;
  readonly identities: readonly FederatedIdentity[];
  readonly provider: azuread.Provider;
}

/**
 * A credential's name on the app, from what it trusts: the same workload keeps its resource when the list is
 * reordered or grows, and Entra ID's rules for the name (unique per app, letters, digits and dashes) hold.
 */
export function federatedCredentialName(identity: FederatedIdentity): string {
  return `o365-connector-${createHash('sha256').update(`${identity.issuer}\n${identity.subject}\n${identity.audience}`).digest('hex').slice(0, 16)}`;
}

/**
 * The app's federated identity credentials, one per workload allowed to sign in as the app without a secret (a
 * Kubernetes service account, a GitHub Actions environment, another cloud's identity). In a home stack the multi-tenant
 * app holds them, so every customer tenant's connector signs in with the same workload token.
 */
export class FederatedIdentities extends pulumi.ComponentResource {
  readonly credentials: azuread.ApplicationFederatedIdentityCredential[];

  constructor(name: string, args: FederatedIdentitiesArgs, options: pulumi.ComponentResourceOptions = {}) {
    super('o365-connector:index:FederatedIdentities', name, {}, options);
    this.credentials = args.identities.map((identity) => {
      const credentialName = federatedCredentialName(identity);
      return new azuread.ApplicationFederatedIdentityCredential(`${name}-${credentialName}`, {
        applicationId: args.applicationId,
        displayName: credentialName,
        description: `o365-connector: ${identity.subject} of ${identity.issuer}`.slice(0, 600),
        issuer: identity.issuer,
        subject: identity.subject,
        audiences: [identity.audience],
      }, { parent: this, provider: args.provider });
    });
    this.registerOutputs({ names: this.credentials.map((credential) => credential.displayName) });
  }
}
