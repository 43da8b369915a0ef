// Explicit providers pointed at the configured cloud. Explicit providers do not read the stack's provider
// config (only the default provider does), so the stack's `azuread:*` / `azure-native:*` settings are handed over.
import * as pulumi from '@pulumi/pulumi';
import * as azuread from '@pulumi/azuread';
import { Provider as AzureNativeProvider } from '@pulumi/azure-native/provider.js';
import type { CloudName } from '../contract/clouds.ts';

/** The azuread provider's `environment` per cloud: GCC lives in the commercial Entra ID. */
export const azureadEnvironment: Readonly<Record<CloudName, string>> = {
  commercial: 'global', gcc: 'global', gcchigh: 'usgovernmentl4', dod: 'usgovernmentl5', china: 'china',
};

/** The azure-native provider's `environment` per cloud: GCC High and DoD both live in Azure Government. */
export const armEnvironment: Readonly<Record<CloudName, string>> = {
  commercial: 'public', gcc: 'public', gcchigh: 'usgovernment', dod: 'usgovernment', china: 'china',
};

const secretSettings = new Set(['clientSecret', 'clientCertificate', 'clientCertificatePassword', 'oidcToken', 'oidcRequestToken']);

/** Stack config holds strings; boolean provider options must arrive as booleans, credentials as secrets. */
function providerArgs(settings: Readonly<Record<string, string>>): Record<string, pulumi.Input<string | boolean>> {
  const args: Record<string, pulumi.Input<string | boolean>> = {};
  for (const [key, value] of Object.entries(settings)) {
    if (key === 'environment' || key === 'version') continue;
    args[key] = value === 'true' ? true : value === 'false' ? false : secretSettings.has(key) ? pulumi.secret(value) : value;
  }
  return args;
}

export function azureadProvider(cloud: CloudName, settings: Readonly<Record<string, string>>): azuread.Provider {
  const args: azuread.ProviderArgs = providerArgs(settings);
  // A custom metadata host replaces the named environment (the provider rejects both).
  return new azuread.Provider('azuread', settings['metadataHost'] ? args : { ...args, environment: azureadEnvironment[cloud] });
}

/** `name` tells two explicit providers apart (the Sentinel workspace's subscription gets one of its own). */
export function azureNativeProvider(cloud: CloudName, settings: Readonly<Record<string, string>>, name = 'azure-native'): AzureNativeProvider {
  const args = providerArgs(settings);
  return new AzureNativeProvider(name, settings['metadataHost'] ? args : { ...args, environment: armEnvironment[cloud] });
}
