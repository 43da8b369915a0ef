import * as pulumi from '@pulumi/pulumi';
import * as subscription from '@pulumi/azure-native/subscription/index.js';
import type { Provider } from '@pulumi/azure-native/provider.js';
import type { SubscriptionAliasConfig } from './config.ts';

export interface LoggingSubscriptionArgs extends SubscriptionAliasConfig {
  readonly provider: Provider;
}

/** The "create a subscription" step of the manual setup, for organisations that bill through a billing scope. */
export class LoggingSubscription extends pulumi.ComponentResource {
  readonly alias: subscription.Alias;
  readonly subscriptionId: pulumi.Output<string>;

  constructor(name: string, args: LoggingSubscriptionArgs, options: pulumi.ComponentResourceOptions = {}) {
    super('o365-connector:index:LoggingSubscription', name, {}, options);
    this.alias = new subscription.Alias(name, {
      aliasName: args.aliasName,
      properties: { billingScope: args.billingScope, displayName: args.displayName, workload: args.workload },
    }, { parent: this, provider: args.provider });
    this.subscriptionId = this.alias.properties.apply((properties) => properties.subscriptionId ?? '');
    this.registerOutputs({ subscriptionId: this.subscriptionId });
  }
}
