/**
 * The secret values this process knows (client secret, sink tokens and passwords, proxy password), so that they
 * are cut out of every line it writes, whatever key or message carries them: a token endpoint that echoes the
 * posted secret in `error_description`, or a receiver that echoes its Authorization header in an error body,
 * would otherwise have them printed. Logs redact by key too (log.ts); this is the net under that.
 */
const known = new Set<string>();
let pattern: RegExp | undefined;

/** Values shorter than this are not redacted (they would cut ordinary words out of lines); none is a real secret. */
const shortest = 6;

export const redactedValue = '[redacted]';

/** Remembers a secret value; every line written from now on has it replaced. */
export function registerSecret(value: string | undefined): void {
  if (value === undefined || value.length < shortest || known.has(value)) return;
  known.add(value);
  // Its JSON-escaped form too: that is how it appears inside a JSON log line.
  const forms = new Set([value, JSON.stringify(value).slice(1, -1)]);
  for (const form of forms) known.add(form);
  const alternatives = [...known].sort((a, b) => b.length - a.length).map((text) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  pattern = new RegExp(alternatives.join('|'), 'g');
}

/** `text` with every known secret value replaced by [redacted]. */
export function redactSecrets(text: string): string {
  return pattern === undefined ? text : text.replace(pattern, redactedValue);
}
