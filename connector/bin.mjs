#!/usr/bin/env node
// Plain JavaScript on purpose: it must run on any Node to say clearly when that Node is too old to strip
// TypeScript types, before importing the TypeScript CLI.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(
    `o365-connector needs Node >= 22.18 (found ${process.versions.node}). ` +
      'Run it through npm (npx o365-connector ...) from the repository so the pinned Node 24 is used.\n',
  );
  process.exit(1);
}

// The connector allocates a steady stream of short-lived objects (records, chunks of content bodies). V8 doubles
// its young generation under such a load up to 32 MB semi-spaces, which then hold some 100 MB of dead bodies
// between collections, and lets the old generation grow by up to 2x before collecting it, when what survives is
// mostly records already written. Both kept small cost a few percent of CPU and keep memory flat: a backfill of a
// million records peaks near 150 MB instead of 250 MB. Neither is a cap: the heap still grows as far as it needs.
setFlagsFromString('--semi-space-growth-factor=1');
setFlagsFromString('--heap-growing-percent=10');

const sources = import.meta.dirname;
const bundle = join(sources, '..', 'dist', 'o365-connector.mjs');

/** The newest modification time of the TypeScript sources (a bundle older than them is stale). */
function newestSource(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

function freshBundle() {
  try {
    return statSync(bundle).mtimeMs >= Math.max(newestSource(sources), newestSource(join(sources, '..', 'contract')));
  } catch {
    return false;
  }
}

// The bundle (npm run build, run by npm ci) when it is up to date; the sources otherwise (a working tree being edited).
await import(freshBundle() ? bundle : './cli/program.ts');
