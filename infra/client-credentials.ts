import * as pulumi from '@pulumi/pulumi';
import * as azuread from '@pulumi/azuread';
import type { CredentialKind } from './config.ts';

export interface ClientCredentialsArgs {
  /** The application's resource id (`/applications/{objectId}`). */
  readonly applicationId: pulumi.Input<string>;
  readonly credential: CredentialKind;
  readonly secretLifetimeDays: number;
  readonly secretRotation: number;
  readonly certificatePem: string | undefined;
  readonly provider: azuread.Provider;
  /** When a new secret starts counting its lifetime; injectable for tests. */
  readonly now?: Date;
}

/**
 * The generations whose secrets exist at generation `g`: g itself (the one the outputs hand out) and g-1 (the one
 * running connectors may still hold). Each generation is its own resource, named after it, so a bump creates g+1
 * and deletes g-1 and never touches g: no other input of g changes, hence no replacement.
 */
export function liveSecretGenerations(generation: number): { current: number; previous: number | undefined } {
  return { current: generation, previous: generation > 0 ? generation - 1 : undefined };
}

export function secretResourceName(name: string, generation: number): string {
  return `${name}-secret-${generation}`;
}

export class ClientCredentials extends pulumi.ComponentResource {
  /** The newest secret: the one the connector should use. */
  readonly clientSecret: pulumi.Output<string> | undefined;
  readonly clientSecretExpiry: pulumi.Output<string> | undefined;
  readonly clientSecretKeyId: pulumi.Output<string> | undefined;
  /** Oldest first; the last one is the current secret. */
  readonly passwords: azuread.ApplicationPassword[] = [];
  readonly certificate: azuread.ApplicationCertificate | undefined;

  constructor(name: string, args: ClientCredentialsArgs, options: pulumi.ComponentResourceOptions = {}) {
    super('o365-connector:index:ClientCredentials', name, {}, options);
    const child = { parent: this, provider: args.provider };

    // Only a secret credential has passwords; federated and managed identity have none to rotate or leak.
    if (args.credential === 'secret' || args.credential === 'both') {
      const now = args.now ?? new Date();
      const endDate = new Date(now.getTime() + args.secretLifetimeDays * 86_400_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
      const password = (generation: number) => new azuread.ApplicationPassword(secretResourceName(name, generation), {
        applicationId: args.applicationId,
        displayName: `o365-connector generation ${generation}`,
        endDate,
      }, {
        ...child,
        // The expiry is fixed when a generation is created; later runs compute a later date and must not replace
        // the password for it. Safe because a generation's resource is only ever created, never replaced.
        ignoreChanges: ['endDate'],
      });
      const { current, previous } = liveSecretGenerations(args.secretRotation);
      if (previous !== undefined) this.passwords.push(password(previous));
      const newest = password(current);
      this.passwords.push(newest);
      this.clientSecret = pulumi.secret(newest.value);
      this.clientSecretExpiry = newest.endDate;
      this.clientSecretKeyId = newest.keyId;
    }

    if ((args.credential === 'certificate' || args.credential === 'both') && args.certificatePem !== undefined) {
      this.certificate = new azuread.ApplicationCertificate(`${name}-certificate`, {
        applicationId: args.applicationId,
        type: 'AsymmetricX509Cert',
        encoding: 'pem',
        value: args.certificatePem,
      }, child);
    }

    this.registerOutputs({ clientSecretExpiry: this.clientSecretExpiry, clientSecretKeyId: this.clientSecretKeyId, certificateKeyId: this.certificate?.keyId });
  }
}
