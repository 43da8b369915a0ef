/**
 * The README (the front door) and docs/ say what the connector does: every page is reachable, every link lands, and
 * every flag and default the docs give is what `--help` prints (issue 23, 11).
 */
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { settingNames, settingRange, settingSpecs } from '../../connector/config/settings.ts';

const root = resolve(import.meta.dirname, '../..');

function help(args: string[]): Promise<string> {
  return new Promise((done, fail) => {
    execFile(process.execPath, [join(root, 'connector/bin.mjs'), ...args, '--help'], { cwd: root, env: { ...process.env, O365_OUTPUTS_FILE: '' } }, (error, stdout) => {
      if (error) fail(error);
      else done(stdout);
    });
  });
}

/** The options of one `--help`, each entry on one line: `--flag <value>  text (default: x)`. */
function options(text: string): string[] {
  const section = text.split(/\n(?:Options|Global Options):\n/).slice(1).map((part) => part.split(/\n\n/)[0]!).join('\n');
  return section.split(/\n(?= {2}-)/).map((entry) => entry.replace(/\s+/g, ' ').trim()).filter((entry) => entry.startsWith('-'));
}

/** GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces as hyphens. */
function headingSlugs(text: string): string[] {
  return [...text.matchAll(/^#+ (.*)$/gm)].map(([, title]) => title!.toLowerCase().replace(/[^\p{L}\p{N} -]/gu, '').replace(/ /g, '-'));
}

const pages = async () => (await readdir(join(root, 'docs'))).filter((name) => name.endsWith('.md')).map((name) => join('docs', name));

describe('README and docs/', () => {
  it('keep the two commands CI runs in the README, link every docs page from it, and every relative link lands', async () => {
    const readme = await readFile(join(root, 'README.md'), 'utf8');
    expect(readme).toContain('npm ci && npm run demo');
    expect(readme).toContain('npm test');
    for (const page of await pages()) expect(readme, page).toContain(`](${page})`);
    for (const file of ['README.md', ...await pages()]) {
      const text = await readFile(join(root, file), 'utf8');
      for (const [, target, anchor] of text.matchAll(/\]\(([^)#\s]*)(?:#([^)]*))?\)/g)) {
        if (/^[a-z]+:/.test(target!)) continue;
        const linked = target ? resolve(root, dirname(file), target) : join(root, file);
        expect(existsSync(linked), `${file} → ${target}`).toBe(true);
        if (anchor) expect(headingSlugs(await readFile(linked, 'utf8')), `${file} → ${target}#${anchor}`).toContain(anchor);
      }
    }
  });

  it('give every setting with the flag, default and range that run --help prints', async () => {
    const entries = options(await help(['run']));
    const page = await readFile(join(root, 'docs/settings.md'), 'utf8');
    for (const name of settingNames) {
      const spec = settingSpecs[name];
      const entry = entries.find((text) => text.startsWith(`--${spec.flag} <${spec.unit}>`));
      expect(entry, `--${spec.flag} in run --help`).toMatch(new RegExp(`\\(${settingRange(name)}\\) \\(default: ${spec.default}\\)$`));
      expect(page).toContain(`| \`--${spec.flag} <${spec.unit}>\` | ${spec.default} | ${spec.min}–${spec.max} |`);
    }
  });

  it('list exactly the global options of --help, and the exit codes it prints', async () => {
    const top = await help([]);
    const globals = options(top).map((entry) => entry.split(' ')[0]!).filter((flag) => !['-h,', '--help', '-V,'].includes(flag));
    const connector = await readFile(join(root, 'docs/connector.md'), 'utf8');
    const sentence = /Global options: (.*?)\n\n/s.exec(connector)![1]!.replace(/\s+/g, ' ');
    const documented = [...sentence.matchAll(/`(--[a-z-]+)/g)].map((match) => match[1]);
    expect(documented.sort()).toEqual([...globals].sort());
    for (const code of [0, 1, 2, 3, 4, 5, 6, 10, 11, 130]) {
      expect(top, `exit code ${code} in --help`).toMatch(new RegExp(`\\b${code} `));
      expect(connector, `exit code ${code} in docs/connector.md`).toMatch(new RegExp(`\\b${code} `));
    }
  });

  it('name in the commands table only options each command has, and the defaults its --help prints', async () => {
    const connector = await readFile(join(root, 'docs/connector.md'), 'utf8');
    const rows = connector.split('\n').filter((line) => /^\| `(test|subscriptions|run|status)\b/.test(line));
    expect(rows).toHaveLength(4);
    for (const row of rows) {
      const usage = /^\| `([^`]*)`/.exec(row)![1]!;
      const command = usage.split(' ')[0]!;
      const text = command === 'subscriptions' ? await help(['subscriptions', 'start']) : await help([command]);
      const flags = options(text).map((entry) => entry.split(' ')[0]!.replace(/,$/, ''));
      for (const [flag] of usage.matchAll(/--[a-z-]+/g)) expect(flags, `${command} ${flag}`).toContain(flag);
      // A default the usage shows (`--since 7d`) is the default --help prints.
      for (const [, flag, value] of usage.matchAll(/\[(--[a-z-]+) (\w*\d\w*)\]/g)) {
        const entry = options(text).find((option) => option.startsWith(`${flag} `));
        if (entry?.includes('(default: ')) expect(entry, `${command} ${flag}`).toContain(`(default: "${value}")`);
      }
    }
  });
});
