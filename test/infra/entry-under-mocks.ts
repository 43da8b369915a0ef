// Child-process driver: loads Pulumi.yaml's `main` the way Pulumi's nodejs language host does (import(), then calls
// the default export inside the root stack) with Node's own type stripping, not vitest's transform, under mocks.
// argv[2]: the stack config map as JSON. Prints one JSON line: the stack outputs as the engine receives them, and
// the registered resources.
import { readFile } from 'node:fs/promises';
import * as pulumi from '@pulumi/pulumi';
import { installMocks } from './mocks.ts';

const settings = JSON.parse(process.argv[2] ?? '{}') as Record<string, string>;
const { resources } = installMocks();
pulumi.runtime.setAllConfig(settings);

const projectFile = await readFile(new URL('../../Pulumi.yaml', import.meta.url), 'utf8');
const main = /^main:\s*(\S+)\s*$/m.exec(projectFile)?.[1];
if (!main) throw new Error('Pulumi.yaml names no main');
const entry = (await import(new URL(`../../${main}`, import.meta.url).href)) as { default: () => Promise<Record<string, unknown>> };

let exported: Record<string, unknown> = {};
await pulumi.runtime.runInPulumiStack(async () => {
  exported = await entry.default();
  return exported;
});
const outputs = await pulumi.runtime.serializeProperties('stack outputs', exported);
await pulumi.runtime.disconnect();
process.stdout.write(`${JSON.stringify({ outputs, resources: resources.map((r) => `${r.type} ${r.name}`) })}\n`);
