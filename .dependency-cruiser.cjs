/**
 * The layer rules of the house (README, "How it is built"): each folder of connector/ imports only from the
 * folders below it, nothing imports in a circle, and what infra/ and the connector share lives in contract/.
 * `npm test` runs it (test/architecture/layers.test.ts); `npm run deps` prints every broken rule.
 */
const order = ['core', 'observe', 'http', 'config', 'auth', 'sources|state|sinks', 'pipeline', 'run', 'report', 'cli'];
const above = (i) => `^connector/(${order.slice(i + 1).join('|')})/`;

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'no import cycles, type-only imports included',
      from: { path: '^(connector|contract|infra|scripts)/' },
      to: { circular: true },
    },
    { name: 'not-to-unresolvable', severity: 'error', comment: 'every import resolves', from: {}, to: { couldNotResolve: true } },
    ...order.slice(0, -1).map((name, i) => ({
      name: `no-upward-from-${name.split('|').join('-')}`,
      severity: 'error',
      comment: `connector/${name}/ imports only from the layers below it`,
      from: { path: `^connector/(${name})/` },
      to: { path: above(i) },
    })),
    {
      name: 'peers-stay-apart',
      severity: 'error',
      comment: 'a source, the state and a sink meet only in pipeline/',
      from: { path: '^connector/(sources|state|sinks)/' },
      to: { path: '^connector/(sources|state|sinks)/', pathNot: '^connector/$1/' },
    },
    {
      name: 'every-file-has-a-layer',
      severity: 'error',
      comment: 'a file at the root of connector/ has no layer (bin.mjs, the entry point, stands outside them)',
      from: { path: '^connector/[^/]+\\.(ts|mjs)$', pathNot: '^connector/bin\\.mjs$' },
      to: {},
    },
    {
      name: 'contract-is-the-bottom',
      severity: 'error',
      comment: 'contract/ (clouds, the outputs schema, content types) depends on nothing of ours',
      from: { path: '^contract/' },
      to: { path: '^(connector|infra|scripts|test)/' },
    },
    {
      name: 'infra-takes-only-the-contract',
      severity: 'error',
      comment: 'the Pulumi program shares only contract/ with the connector',
      from: { path: '^infra/' },
      to: { path: '^(connector|scripts|test)/' },
    },
    {
      name: 'connector-is-not-infra',
      severity: 'error',
      comment: 'the connector ships alone: no import of infra/, scripts/ or test/',
      from: { path: '^connector/' },
      to: { path: '^(infra|scripts|test)/' },
    },
    {
      name: 'stand-in-takes-only-the-contract',
      severity: 'error',
      comment: 'the Microsoft stand-in shares no code with what it stands in for (a bug would be mirrored, not caught)',
      from: { path: '^test/emulator/' },
      to: { path: '^connector/' },
    },
  ],
  options: {
    // `import type` counts: a type-only import couples the layers as much as any.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules)/' },
    // The deliberate exceptions: (1) connector/bin.mjs, the entry point, stands outside the layers (see
    // every-file-has-a-layer); (2) scripts/ (demo, bench, emulator) import the stand-in and the receivers under test/,
    // which the tests own: scripts are thin entry points, not a layer, and no rule covers them.
  },
};
