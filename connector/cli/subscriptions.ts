import { auditTypesOf, contentTypes } from '../../contract/content-types.ts';
import { ActivityApiError, subscriptionMissingCode } from '../sources/activity-api/af-errors.ts';
import { exitCodes } from './exit-codes.ts';
import { createRuntime, type GlobalFlags } from './runtime.ts';

export type SubscriptionVerb = 'start' | 'stop' | 'list';

/**
 * `subscriptions start|stop|list`. Start and stop are idempotent: an already enabled subscription (AF20024)
 * counts as started, a missing one (AF20022) as stopped. One line per content type on stdout.
 */
export async function manageSubscriptions(verb: SubscriptionVerb, flags: GlobalFlags & { contentTypes?: string | undefined }, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const runtime = await createRuntime(flags);
  try {
    if (verb === 'list') {
      const list = await runtime.api.listSubscriptions();
      for (const type of contentTypes) {
        const entry = list.find((s) => s.contentType === type);
        out.write(`${type.padEnd(28)} ${entry?.status ?? 'not started'}\n`);
      }
      return exitCodes.ok;
    }
    // ServiceHealth is read from Microsoft Graph: it has no Management API subscription.
    for (const type of auditTypesOf(runtime.config.contentTypes)) {
      if (verb === 'start') {
        await runtime.api.startSubscription(type);
      } else {
        try {
          await runtime.api.stopSubscription(type);
        } catch (error) {
          if (!(error instanceof ActivityApiError && error.code === subscriptionMissingCode)) throw error;
        }
      }
      out.write(`${type.padEnd(28)} ${verb === 'start' ? 'enabled' : 'disabled'}\n`);
    }
    return exitCodes.ok;
  } finally {
    await runtime.close();
  }
}
