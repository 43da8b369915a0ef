// Pulumi.yaml's `main`. Plain JavaScript on purpose: it must run on any Node to say clearly when that Node cannot
// strip TypeScript types, before importing the TypeScript program.
import { RunError } from '@pulumi/pulumi';

export default async function program() {
  if (!process.features.typescript) {
    throw new RunError(
      `o365-connector's Pulumi program is TypeScript run by Node's type stripping (Node >= 22.18), which the Node ${process.version} ` +
        'running it does not do. Run the CLI through npm so the pinned Node 24 is used: npm run pulumi -- up',
    );
  }
  // Pulumi awaits this and takes the object as the stack outputs.
  const { default: outputs } = await import('./index.ts');
  return outputs;
}
