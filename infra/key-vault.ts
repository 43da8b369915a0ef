import * as pulumi from '@pulumi/pulumi';
import * as keyvault from '@pulumi/azure-native/keyvault/index.js';
import type { Provider } from '@pulumi/azure-native/provider.js';
import type { KeyVaultConfig } from './config.ts';

export interface ConnectorKeyVaultArgs extends KeyVaultConfig {
  readonly tenantId: pulumi.Input<string>;
  readonly clientSecret: pulumi.Input<string>;
  readonly secretName: string;
  readonly provider: Provider;
}

/** A Key Vault in RBAC mode that also holds the client secret, for connectors that read secrets from a vault. */
export class ConnectorKeyVault extends pulumi.ComponentResource {
  readonly vault: keyvault.Vault;
  readonly secret: keyvault.Secret;
  readonly vaultUri: pulumi.Output<string>;
  readonly secretName: string;

  constructor(name: string, args: ConnectorKeyVaultArgs, options: pulumi.ComponentResourceOptions = {}) {
    super('o365-connector:index:ConnectorKeyVault', name, {}, options);
    const child = { parent: this, provider: args.provider };
    this.vault = new keyvault.Vault(name, {
      resourceGroupName: args.resourceGroupName,
      location: args.location,
      ...(args.name ? { vaultName: args.name } : {}),
      properties: {
        tenantId: args.tenantId,
        sku: { family: 'A', name: 'standard' },
        enableRbacAuthorization: true,
        enableSoftDelete: true,
        softDeleteRetentionInDays: 90,
        enablePurgeProtection: true,
      },
    }, child);
    this.secretName = args.secretName;
    this.secret = new keyvault.Secret(`${name}-client-secret`, {
      resourceGroupName: args.resourceGroupName,
      vaultName: this.vault.name,
      secretName: args.secretName,
      properties: { value: args.clientSecret, contentType: 'client secret of the o365-connector app registration' },
    }, { ...child, additionalSecretOutputs: ['properties'] });
    this.vaultUri = this.vault.properties.apply((properties) => properties.vaultUri ?? '');
    this.registerOutputs({ vaultUri: this.vaultUri });
  }
}
