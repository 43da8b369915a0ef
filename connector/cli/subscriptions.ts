import { auditTypesOf, contentTypes } from '../../contract/content-types.ts';
import type { RunConfiguration } from '../config/run-config.ts';
import { loggerFor } from '../observe/log.ts';
import { Telemetry } from '../observe/telemetry.ts';
import { TenantRuntimes } from '../run/tenant-runtimes.ts';
import { tenantSourceOf } from '../run/tenants.ts';
import { ActivityApiError, subscriptionMissingCode } from '../sources/activity-api/af-errors.ts';
import { exitCodes } from './exit-codes.ts';

export type SubscriptionVerb = 'start' | 'stop' | 'list';

/**
 * `subscriptions start|stop|list`. Start and stop are idempotent: an already enabled subscription (AF20024)
 * counts as started, a missing one (AF20022) as stopped. One line per content type on stdout.
 */
export async function manageSubscriptions(verb: SubscriptionVerb, config: RunConfiguration, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const tenants = await tenantSourceOf(config.tenants);
  const runtimes = new TenantRuntimes({ proxy: config.proxy, logger: loggerFor(config), telemetry: new Telemetry(), settings: config.settings, oneTenant: true });
  try {
    await runtimes.apply(await tenants.scan());
    const { api } = runtimes.all()[0]!.clients;
    if (verb === 'list') {
      const list = await api.listSubscriptions();
      for (const type of contentTypes) {
        const entry = list.find((s) => s.contentType === type);
        out.write(`${type.padEnd(28)} ${entry?.status ?? 'not started'}\n`);
      }
      return exitCodes.ok;
    }
    // ServiceHealth is read from Microsoft Graph: it has no Management API subscription.
    for (const type of auditTypesOf(runtimes.all()[0]!.entry.config.contentTypes)) {
      if (verb === 'start') {
        await api.startSubscription(type);
      } else {
        try {
          await api.stopSubscription(type);
        } catch (error) {
          if (!(error instanceof ActivityApiError && error.code === subscriptionMissingCode)) throw error;
        }
      }
      out.write(`${type.padEnd(28)} ${verb === 'start' ? 'enabled' : 'disabled'}\n`);
    }
    return exitCodes.ok;
  } finally {
    await runtimes.close();
  }
}
