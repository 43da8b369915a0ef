import type { Reporter, TestModule } from 'vitest/node';

const shown = 12;

/**
 * Lists the slowest test files at the end of a run, each with its wall time in the worker: preparing the worker,
 * the environment and setup files, importing the file (collecting its tests), then its tests and hooks.
 */
export default class SlowestFilesReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    const timed = testModules.map((module) => {
      const d = module.diagnostic();
      return { file: module.relativeModuleId, ms: d.prepareDuration + d.environmentSetupDuration + d.setupDuration + d.collectDuration + d.duration };
    }).sort((a, b) => b.ms - a.ms).slice(0, shown);
    if (timed.length === 0) return;
    const width = Math.max(...timed.map(({ ms }) => (ms / 1000).toFixed(1).length));
    const lines = timed.map(({ file, ms }) => `  ${(ms / 1000).toFixed(1).padStart(width)} s  ${file}`);
    process.stdout.write(`\nSlowest test files:\n${lines.join('\n')}\n`);
  }
}
