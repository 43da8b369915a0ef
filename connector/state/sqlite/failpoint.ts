/**
 * Test hook, not a feature: lets the reliability suite kill the connector at an exact point that no outside
 * observer can hit reliably. Set `O365_FAILPOINT=<name>:<n>` and the n-th time (1-based) this process reaches
 * the failpoint `<name>`, it SIGKILLs itself, so nothing after it runs (no finally, no exit handler), as with a
 * power loss or an OOM kill. Unset (always, in production), a failpoint costs one environment lookup.
 *
 * Failpoints: `commit-mid-transaction` (sqlite/store.ts): every statement of a commit ran, COMMIT did not.
 */
export type FailpointName = 'commit-mid-transaction';

const reached = new Map<FailpointName, number>();

export function failpoint(name: FailpointName): void {
  const spec = process.env['O365_FAILPOINT'];
  if (!spec?.startsWith(`${name}:`)) return;
  const hits = (reached.get(name) ?? 0) + 1;
  reached.set(name, hits);
  if (hits === Number(spec.slice(name.length + 1))) process.kill(process.pid, 'SIGKILL');
}
