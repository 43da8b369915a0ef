/** The first problem of an outputs file that fails the stack-outputs contract, as one ConfigError naming the field. */
import type { z } from 'zod';
import { ConfigError } from '../core/errors.ts';
import { collectedTypes } from '../../contract/content-types.ts';
import type { StackOutputs } from '../../contract/stack-outputs.ts';

/** What fixes a field when its issue carries no fix of its own. */
const fixes: Partial<Record<keyof StackOutputs, string>> = {
  tenantId: 'use `pulumi stack output tenantId`',
  clientId: 'use `pulumi stack output clientId`',
  publisherId: 'leave it unset to use the tenant id',
  contentTypes: `use any of ${collectedTypes.join(', ')}`,
  clientSecret: 'write the outputs file with `pulumi stack output --json --show-secrets`',
};
const regenerate = 'regenerate the outputs file with `pulumi stack output --json --show-secrets`';

/**
 * The first problem of a failed parse as one ConfigError naming the field. Messages come from the schema above,
 * which quotes values only of fields that are not secret; zod's own messages never quote the value.
 */
export function outputsError(error: z.ZodError): ConfigError {
  const issue = error.issues[0]!;
  const field = String(issue.path[0] ?? 'outputs');
  const fix = issue.code === 'custom' && typeof issue.params?.['fix'] === 'string' ? issue.params['fix'] as string : fixes[field as keyof StackOutputs] ?? regenerate;
  let message = issue.message;
  if (issue.code === 'invalid_type' && !/^must /.test(message)) message = `must be ${issue.expected === 'array' ? 'a list' : `a ${issue.expected}`}`;
  if (issue.code === 'too_small' && issue.origin === 'string') message = 'must not be empty';
  return new ConfigError(field, message, fix);
}
