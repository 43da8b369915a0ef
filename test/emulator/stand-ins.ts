/** The stand-ins one test file starts: on one test PKI, reached through one agent that trusts it, all stopped after the file. */
import { afterAll, beforeAll } from 'vitest';
import { Agent } from 'undici';
import { startEmulator, type Emulator, type EmulatorOptions } from './index.ts';
import { createTestPki, type TestPki } from './tls.ts';

export interface StandIns {
  readonly pki: TestPki;
  readonly agent: Agent;
  /** A stand-in on the file's PKI, stopped after the file. */
  start(options: EmulatorOptions): Promise<Emulator>;
}

export function standInsOfThisFile(): StandIns {
  let pki: TestPki | undefined;
  let agent: Agent | undefined;
  const started: Emulator[] = [];
  beforeAll(async () => {
    pki = await createTestPki();
    agent = new Agent({ connect: { ca: pki.caCertPem } });
  });
  afterAll(async () => {
    await Promise.all(started.map((emulator) => emulator.stop()));
    await agent?.close();
  });
  return {
    get pki() { return pki!; },
    get agent() { return agent!; },
    async start(options) {
      const emulator = await startEmulator({ pki: pki!, ...options });
      started.push(emulator);
      return emulator;
    },
  };
}
