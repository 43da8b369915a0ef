/**
 * Prometheus' promtool (Debian's `prometheus` package; scripts/setup-test-deps.sh installs it), and the metric names
 * the deploy/ files' queries name.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

export const deployDir = resolve(import.meta.dirname, '../../deploy');
export const rulesFile = resolve(deployDir, 'prometheus/o365-connector.rules.yml');
export const dashboardFile = resolve(deployDir, 'grafana/o365-connector.json');

export function promtoolUnavailable(): string | undefined {
  return spawnSync('promtool', ['--version']).error ? 'promtool is not installed (Debian\'s prometheus package; scripts/setup-test-deps.sh installs it, as root with apt)' : undefined;
}

/** promtool with these arguments: its exit code and what it printed. */
export function promtool(args: readonly string[], cwd = deployDir): { status: number | null; output: string } {
  const run = spawnSync('promtool', args, { cwd, encoding: 'utf8', timeout: 60_000 });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

/** Every PromQL expression of the dashboard (its panels' targets and its variables' queries), Grafana's variables as they are. */
export function dashboardQueries(): string[] {
  const dashboard = JSON.parse(readFileSync(dashboardFile, 'utf8')) as { panels: Array<{ targets?: Array<{ expr: string }> }>; templating: { list: Array<{ definition?: string }> } };
  return [
    ...dashboard.panels.flatMap((panel) => (panel.targets ?? []).map((target) => target.expr)),
    ...dashboard.templating.list.flatMap((variable) => (variable.definition ? [variable.definition] : [])),
  ];
}

/** The `expr:` of every rule (a YAML block scalar `|` spans the lines indented below it). */
export function ruleExpressions(): string[] {
  const lines = readFileSync(rulesFile, 'utf8').split('\n');
  const expressions: string[] = [];
  for (let i = 0; i < lines.length; i += 1) {
    const match = /^(\s*)expr:\s*(.*)$/.exec(lines[i]!);
    if (!match) continue;
    if (match[2] !== '|') { expressions.push(match[2]!); continue; }
    const block: string[] = [];
    while (i + 1 < lines.length && (lines[i + 1]!.trim() === '' || lines[i + 1]!.search(/\S/) > match[1]!.length)) block.push(lines[++i]!.trim());
    expressions.push(block.join(' ').trim());
  }
  return expressions;
}

/** The metric names an expression reads (the connector's and Node's: o365_*, process_*, nodejs_*). */
export function metricNames(expression: string): string[] {
  return [...expression.matchAll(/\b((?:o365|process|nodejs)_[a-zA-Z0-9_]+)/g)].map((match) => match[1]!);
}

/**
 * The dashboard's expressions with Grafana's variables given values, as recording rules that promtool can check:
 * a query that does not parse fails `promtool check rules`.
 */
export function dashboardAsRules(): string {
  const concrete = dashboardQueries().map((query) => query.replaceAll('$__rate_interval', '5m').replaceAll('$tenant', '.*').replace(/^label_values\((\w+), (\w+)\)$/, 'count by ($2) ($1)'));
  return `groups:\n  - name: dashboard\n    rules:\n${concrete.map((expr, i) => `      - record: dashboard:query_${i}\n        expr: ${JSON.stringify(expr)}\n`).join('')}`;
}
