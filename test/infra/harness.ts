// Runs the real program under pulumi's mocks, with config set the way `pulumi config set` stores it.
import * as pulumi from '@pulumi/pulumi';
import { configNamespace, readConfig } from '../../infra/config.ts';
import type { TokenRequest } from '../../infra/consent-check.ts';
import { provision, type ConnectorOutputs, type StackOutputs } from '../../infra/provision.ts';
import { installMocks, type MockWorld, type RecordedResource } from './mocks.ts';

export const defaultNow = new Date('2026-11-25T00:00:00Z');

export interface ProgramRun<Outputs extends StackOutputs = ConnectorOutputs> {
  readonly resources: RecordedResource[];
  readonly calls: { token: string; inputs: Record<string, any> }[];
  readonly outputs: Outputs;
  /** Token requests a verify-only customer stack made to learn the app's granted roles. */
  readonly tokenRequests: TokenRequest[];
  /** The ignoreChanges option each resource was registered with, by `type::name`. */
  readonly ignoreChanges: Map<string, readonly string[]>;
  ofType(type: string): RecordedResource[];
}

/** Keys without a namespace are the project's own (`cloud` -> `o365-connector:cloud`), as `pulumi config set` does. */
export function stackSettings(settings: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(settings).map(([key, value]) => [key.includes(':') ? key : `${configNamespace}:${key}`, value]));
}

export interface World extends MockWorld {
  /** The roles claim of the app's token in the signed-in tenant (verify-only customer stacks); undefined: unknown app. */
  readonly grantedRoles?: readonly string[] | undefined;
}

export async function runProgram<Outputs extends StackOutputs = ConnectorOutputs>(settings: Record<string, string> = {}, now: Date = defaultNow, world: World = {}): Promise<ProgramRun<Outputs>> {
  const recorded = installMocks(world);
  const tokenRequests: TokenRequest[] = [];
  const grantedRoles = async (request: TokenRequest) => {
    tokenRequests.push(request);
    return 'grantedRoles' in world ? world.grantedRoles : [];
  };
  pulumi.runtime.setAllConfig(stackSettings(settings));
  const ignoreChanges = new Map<string, readonly string[]>();
  // Read before the stack starts, so a rejected config fails this call the way it fails `pulumi up`, before any resource.
  const config = readConfig(undefined, now);
  let outputs: StackOutputs | undefined;
  let failure: { error: unknown } | undefined;
  await pulumi.runtime.runInPulumiStack(async () => {
    pulumi.runtime.registerStackTransformation((args) => {
      ignoreChanges.set(`${args.type}::${args.name}`, args.opts.ignoreChanges ?? []);
      return undefined;
    });
    try {
      outputs = await provision(config, { now, grantedRoles });
    } catch (error) {
      // Kept for after the engine settles: `pulumi up` prints a program's error once, as this call's rejection does.
      failure = { error };
      return {};
    }
    return outputs;
  });
  // Wait for every registration the program started, so the recorded graph is complete.
  await pulumi.runtime.disconnect();
  if (failure) throw failure.error;
  return {
    ...recorded,
    outputs: outputs as Outputs,
    tokenRequests,
    ignoreChanges,
    ofType: (type) => recorded.resources.filter((resource) => resource.type === type),
  };
}
