import * as pulumi from '@pulumi/pulumi';
import * as keyvault from '@pulumi/azure-native/keyvault/index.js';
import * as authorization from '@pulumi/azure-native/authorization/index.js';
import type { Provider } from '@pulumi/azure-native/provider.js';
import type { KeyVaultConfig } from './config.ts';

/** Built-in role "Key Vault Secrets User": read secret contents, nothing else. */
export const keyVaultSecretsUserRoleId = '4633458b-17de-408a-b874-0445c86b69e6';

export interface ConnectorKeyVaultArgs extends KeyVaultConfig {
  readonly tenantId: pulumi.Input<string>;
  readonly clientSecret: pulumi.Input<string>;
  /** RFC 3339 expiry of the client secret, copied onto the vault secret so vault tooling sees it too. */
  readonly clientSecretExpiry: pulumi.Input<string>;
  readonly provider: Provider;
}

/** A Key Vault in RBAC mode that also holds the client secret, for connectors that read secrets from a vault. */
export class ConnectorKeyVault extends pulumi.ComponentResource {
  readonly vault: keyvault.Vault;
  readonly secret: keyvault.Secret;
  readonly readerAssignments: authorization.RoleAssignment[];
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
        // Access by Azure RBAC only: no access policies to drift, role assignments below are the whole story.
        enableRbacAuthorization: true,
        enableSoftDelete: true,
        softDeleteRetentionInDays: 90,
        // Purge protection cannot be switched off again; ARM rejects `false` once it was on, so send it only when on.
        ...(args.purgeProtection ? { enablePurgeProtection: true } : {}),
      },
    }, child);
    this.secretName = args.secretName;
    // The ARM (control-plane) secret resource needs no data-plane role for the deployer.
    this.secret = new keyvault.Secret(`${name}-client-secret`, {
      resourceGroupName: args.resourceGroupName,
      vaultName: this.vault.name,
      secretName: args.secretName,
      properties: {
        value: pulumi.secret(args.clientSecret),
        contentType: 'client secret of the o365-connector app registration',
        attributes: { enabled: true, expires: pulumi.output(args.clientSecretExpiry).apply((date) => Math.floor(Date.parse(date) / 1000)) },
      },
    }, child);
    const subscription = this.vault.id.apply((id) => id.split('/').slice(0, 3).join('/'));
    this.readerAssignments = args.secretReaders.map((reader) => new authorization.RoleAssignment(`${name}-reader-${reader.objectId}`, {
      scope: this.vault.id,
      principalId: reader.objectId,
      principalType: reader.principalType,
      roleDefinitionId: pulumi.interpolate`${subscription}/providers/Microsoft.Authorization/roleDefinitions/${keyVaultSecretsUserRoleId}`,
    }, child));
    this.vaultUri = this.vault.properties.apply((properties) => properties.vaultUri ?? '');
    this.registerOutputs({ vaultUri: this.vaultUri, secretName: this.secretName });
  }
}
