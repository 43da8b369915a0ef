import { defineConfig } from 'vitest/config';

// The memory test measures a child process's peak RSS; it runs alone, after everything else, so that the rest of
// the suite competing for the 2 cores does not show up as memory (a starved process collects garbage later).
const memoryTest = 'test/e2e/memory.test.ts';

export default defineConfig({
  test: {
    // The closing line last: CI reads it as the run's result.
    reporters: ['default', './test/slowest-files-reporter.ts', './test/closing-line-reporter.ts'],
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    projects: [
      { extends: true, test: { name: 'suite', include: ['test/**/*.test.ts'], exclude: [memoryTest] } },
      { extends: true, test: { name: 'memory', include: [memoryTest], sequence: { groupOrder: 1 } } },
    ],
  },
});
