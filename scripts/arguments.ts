// Parsers for the scripts' numeric options (commander calls them with the raw text).
import { InvalidArgumentError } from 'commander';

/** A number >= 0 (fractions allowed). */
export function number(value: string): number {
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed < 0) throw new InvalidArgumentError('must be a non-negative number');
  return parsed;
}

/** A whole number >= 0. */
export function count(value: string): number {
  const parsed = number(value);
  if (!Number.isInteger(parsed)) throw new InvalidArgumentError('must be a whole number >= 0');
  return parsed;
}

/** A share between 0 and 1. */
export function share(value: string): number {
  const parsed = number(value);
  if (parsed > 1) throw new InvalidArgumentError('must be between 0 and 1');
  return parsed;
}
