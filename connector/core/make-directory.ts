/**
 * Creates a directory and its missing parents one level at a time. Node's `mkdirSync(…, { recursive: true })` loops
 * for ever, at full CPU and deaf to signals, on a path whose parent exists but refuses children with ENOENT (under
 * /proc, /sys): here each level is one mkdir, and such a refusal is an error like any other.
 */
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

export function makeDirectory(path: string, mode?: number): void {
  const missing: string[] = [];
  for (let current = resolve(path); !existsSync(current); current = dirname(current)) {
    missing.unshift(current);
    if (dirname(current) === current) break;
  }
  for (const dir of missing) {
    try {
      mkdirSync(dir, mode === undefined ? {} : { mode });
    } catch (error) {
      // Another process made it meanwhile.
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || !statSync(dir).isDirectory()) throw error;
    }
  }
}
