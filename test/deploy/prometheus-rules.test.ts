import { describe, expect, it } from 'vitest';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { workDir } from '../e2e/support.ts';
import { dashboardAsRules, dashboardQueries, promtool, promtoolUnavailable, ruleExpressions } from './promtool.ts';

const unavailable = promtoolUnavailable();

describe(`deploy/: the Prometheus rules and the Grafana dashboard${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  it.skipIf(unavailable !== undefined)('the alerting rules are valid and pass their unit tests (promtool test rules)', { timeout: 60_000 }, () => {
    const check = promtool(['check', 'rules', 'prometheus/o365-connector.rules.yml']);
    expect(check.output).toContain('SUCCESS: 9 rules found');
    expect(check.status).toBe(0);
    const tests = promtool(['test', 'rules', 'o365-connector.rules.test.yml'], join(import.meta.dirname, '../../deploy/prometheus'));
    expect(tests.output).toContain('SUCCESS');
    expect(tests.status, tests.output).toBe(0);
    expect(ruleExpressions()).toHaveLength(9);
  });

  it.skipIf(unavailable !== undefined)('every query of the dashboard is PromQL that Prometheus parses', { timeout: 60_000 }, async () => {
    const queries = dashboardQueries();
    expect(queries.length).toBeGreaterThan(15);
    const file = join(await workDir(), 'dashboard-queries.yml');
    await writeFile(file, dashboardAsRules());
    const check = promtool(['check', 'rules', file]);
    expect(check.status, check.output).toBe(0);
    expect(check.output).toContain(`SUCCESS: ${queries.length} rules found`);
  });
});
