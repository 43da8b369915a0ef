// Runs the real program under pulumi's mocks, with config set the way `pulumi config set` stores it.
import * as pulumi from '@pulumi/pulumi';
import { configNamespace, readConfig } from '../../infra/config.ts';
import { provision, type ConnectorOutputs } from '../../infra/provision.ts';
import { installMocks, type PublishedPermissions, type RecordedResource } from './mocks.ts';

export const defaultNow = new Date('2026-11-25T00:00:00Z');

export interface ProgramRun {
  readonly resources: RecordedResource[];
  readonly calls: { token: string; inputs: Record<string, any> }[];
  readonly outputs: ConnectorOutputs;
  /** The ignoreChanges option each resource was registered with, by `type::name`. */
  readonly ignoreChanges: Map<string, readonly string[]>;
  ofType(type: string): RecordedResource[];
}

/** Keys without a namespace are the project's own (`cloud` -> `o365-connector:cloud`), as `pulumi config set` does. */
export function stackSettings(settings: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(settings).map(([key, value]) => [key.includes(':') ? key : `${configNamespace}:${key}`, value]));
}

export async function runProgram(settings: Record<string, string> = {}, now: Date = defaultNow, published?: PublishedPermissions): Promise<ProgramRun> {
  const recorded = installMocks(published);
  pulumi.runtime.setAllConfig(stackSettings(settings));
  const ignoreChanges = new Map<string, readonly string[]>();
  // Read before the stack starts, so a rejected config fails this call the way it fails `pulumi up`, before any resource.
  const config = readConfig(undefined, now);
  let outputs: ConnectorOutputs | undefined;
  await pulumi.runtime.runInPulumiStack(async () => {
    pulumi.runtime.registerStackTransformation((args) => {
      ignoreChanges.set(`${args.type}::${args.name}`, args.opts.ignoreChanges ?? []);
      return undefined;
    });
    outputs = provision(config, { now });
    return outputs;
  });
  // Wait for every registration the program started, so the recorded graph is complete.
  await pulumi.runtime.disconnect();
  return {
    ...recorded,
    outputs: outputs!,
    ignoreChanges,
    ofType: (type) => recorded.resources.filter((resource) => resource.type === type),
  };
}
