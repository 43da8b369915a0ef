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
  /** When new secrets start counting their lifetime; injectable for tests. */
  readonly now?: Date;
}

export interface SecretSlotPlan {
  readonly slot: 'a' | 'b';
  /** The generation this slot currently holds; changing it replaces the slot's password. */
  readonly generation: number;
}

/**
 * Zero-downtime rotation with two slots: generation g lives in slot a when g is even, b when odd. Bumping the
 * generation replaces only the slot that held g-1's predecessor (g-2), so the secret of g-1, which running
 * connectors hold, stays valid until the bump after.
 */
export function planSecretSlots(generation: number): { current: SecretSlotPlan; previous: SecretSlotPlan | undefined } {
  const current: SecretSlotPlan = { slot: generation % 2 === 0 ? 'a' : 'b', generation };
  const previous: SecretSlotPlan | undefined = generation === 0 ? undefined : { slot: current.slot === 'a' ? 'b' : 'a', generation: generation - 1 };
  return { current, previous };
}

export class ClientCredentials extends pulumi.ComponentResource {
  /** The newest secret: the one the connector should use. */
  readonly clientSecret: pulumi.Output<string> | undefined;
  readonly clientSecretExpiry: pulumi.Output<string> | undefined;
  readonly clientSecretKeyId: pulumi.Output<string> | undefined;
  readonly passwords: azuread.ApplicationPassword[] = [];
  readonly certificate: azuread.ApplicationCertificate | undefined;

  constructor(name: string, args: ClientCredentialsArgs, options: pulumi.ComponentResourceOptions = {}) {
    super('o365-connector:index:ClientCredentials', name, {}, options);
    const child = { parent: this, provider: args.provider };
    const now = args.now ?? new Date();
    const endDate = new Date(now.getTime() + args.secretLifetimeDays * 24 * 60 * 60 * 1000).toISOString();

    if (args.credential !== 'certificate') {
      const plan = planSecretSlots(args.secretRotation);
      const create = (slot: SecretSlotPlan) => new azuread.ApplicationPassword(`${name}-secret-${slot.slot}`, {
        applicationId: args.applicationId,
        displayName: `o365-connector generation ${slot.generation}`,
        endDate,
        rotateWhenChanged: { generation: String(slot.generation) },
      }, {
        ...child,
        // The expiry is fixed when a password is created; later runs must not replace it because time moved.
        ignoreChanges: ['endDate'],
        // Create the new password before deleting the one it replaces.
        deleteBeforeReplace: false,
      });
      const current = create(plan.current);
      if (plan.previous) this.passwords.push(create(plan.previous));
      this.passwords.push(current);
      this.clientSecret = pulumi.secret(current.value);
      this.clientSecretExpiry = current.endDate;
      this.clientSecretKeyId = current.keyId;
    }

    if (args.credential !== 'secret' && args.certificatePem !== undefined) {
      this.certificate = new azuread.ApplicationCertificate(`${name}-certificate`, {
        applicationId: args.applicationId,
        type: 'AsymmetricX509Cert',
        encoding: 'pem',
        value: args.certificatePem,
      }, child);
    }

    this.registerOutputs({ clientSecretExpiry: this.clientSecretExpiry, clientSecretKeyId: this.clientSecretKeyId });
  }
}
