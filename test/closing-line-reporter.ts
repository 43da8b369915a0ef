import type { Reporter, SerializedError, TestCase, TestModule, TestSuite } from 'vitest/node';

/**
 * Ends every run with the plain `N passed, N failed, N skipped` line that CI reads, counting what went wrong as
 * failed wherever it happened, so that the line agrees with the exit code and no test goes missing from it:
 * - a test counts as it ended: passed, failed, or skipped (it.skip, it.todo, or `context.skip(reason)`);
 * - a test that never ran because something around it failed (a beforeAll hook of its suite, or its file's own
 *   code) counts as failed, not skipped, as does a test still pending when the run ended (its worker died);
 * - a file that failed to load (an import or its top-level code threw before any test was collected) counts as one
 *   failed test, since vitest never learnt what tests it holds; so does a suite whose own hook failed after its tests
 *   had run (an afterAll), and each error that escaped every test (an unhandled rejection);
 * - each of those is named above the line, as are the reasons of tests skipped with `context.skip(reason)`.
 */
export default class ClosingLineReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    const notes: string[] = [];
    const brokenSuites = new Map<TestModule | TestSuite, number>(); // suite with errors of its own → tests it stopped
    const brokenAround = (test: TestCase): TestModule | TestSuite | undefined => {
      for (let parent: TestModule | TestSuite = test.parent; ; parent = parent.parent) {
        if (parent.errors().length > 0) return parent;
        if (parent.type === 'module') return undefined;
      }
    };
    for (const module of testModules) {
      if (module.errors().length > 0) brokenSuites.set(module, 0);
      for (const suite of module.children.allSuites()) if (suite.errors().length > 0) brokenSuites.set(suite, 0);
      for (const test of module.children.allTests()) {
        const result = test.result();
        if (result.state === 'passed') { passed += 1; continue; }
        if (result.state === 'failed') { failed += 1; continue; }
        const broken = brokenAround(test);
        if (result.state === 'pending' || broken) {
          failed += 1;
          if (broken) brokenSuites.set(broken, brokenSuites.get(broken)! + 1);
          else notes.push(`failed: ${module.relativeModuleId} > ${test.fullName}: never finished`);
          continue;
        }
        skipped += 1;
        if (result.note) notes.push(`skipped: ${module.relativeModuleId} > ${test.fullName}: ${result.note}`);
      }
    }
    for (const [suite, stopped] of brokenSuites) {
      const where = suite.type === 'module' ? suite.relativeModuleId : `${suite.module.relativeModuleId} > ${suite.fullName}`;
      const first = suite.errors()[0]?.message?.split('\n')[0] ?? 'an error';
      if (stopped > 0) {
        notes.push(`failed: ${where}: ${first} (its ${stopped} test(s) did not run, counted as failed)`);
      } else {
        failed += 1;
        const what = suite.type === 'module' && [...suite.children.allTests()].length === 0 ? 'the file failed to load; its tests are unknown, counted as 1 failed' : 'counted as 1 failed';
        notes.push(`failed: ${where}: ${first} (${what})`);
      }
    }
    for (const error of unhandledErrors) {
      failed += 1;
      notes.push(`failed: unhandled error: ${error.message?.split('\n')[0] ?? error.name ?? 'unknown'} (counted as 1 failed)`);
    }
    const listing = notes.length > 0 ? `\n${notes.join('\n')}\n` : '';
    process.stdout.write(`${listing}\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
