#!/usr/bin/env node
// Plain JavaScript on purpose: it must run on any Node to say clearly when that Node is too old to strip
// TypeScript types, before importing the TypeScript CLI.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(
    `o365-connector needs Node >= 22.18 (found ${process.versions.node}). ` +
      'Run it through npm (npx o365-connector ...) from the repository so the pinned Node 24 is used.\n',
  );
  process.exit(1);
}
await import('./cli.ts');
