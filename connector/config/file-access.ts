/**
 * Why this process may not read a file, in the words an operator acts on: who owns it, its mode, and which user the
 * connector runs as (the container's is `node`, uid 1000, while a file written by root with `chmod 600` is root's).
 */
import { readFileSync, statSync } from 'node:fs';

/** "owned by root (uid 0), mode 0600, and the connector runs as node (uid 1000)"; undefined when the file cannot be examined. */
export function describeAccess(path: string): { owner: string; mode: string; runsAs: string; uid: number } | undefined {
  try {
    const stats = statSync(path);
    const uid = process.getuid?.() ?? -1;
    return { owner: account(stats.uid), mode: (stats.mode & 0o777).toString(8).padStart(4, '0'), runsAs: account(uid), uid };
  } catch {
    return undefined;
  }
}

/** `name (uid n)`, or `uid n` for a uid this machine has no name for (a container's user unknown to the host). */
function account(uid: number): string {
  try {
    const entry = readFileSync('/etc/passwd', 'utf8').split('\n').map((line) => line.split(':')).find((fields) => fields[2] === String(uid));
    if (entry?.[0]) return `${entry[0]} (uid ${uid})`;
  } catch {
    // No passwd file: the number alone.
  }
  return `uid ${uid}`;
}
