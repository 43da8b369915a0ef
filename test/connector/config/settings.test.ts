import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  defaultRunSettings, parseSetting, runSettingsFrom, settingNames, settingSpecs, settingsMarkers, settingsTableMarkdown, withSettingsTable,
} from '../../../connector/config/settings.ts';
import { ConfigError } from '../../../connector/core/errors.ts';

const root = resolve(import.meta.dirname, '../../..');

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(process.execPath, [resolve(root, 'connector/bin.mjs'), ...args], { cwd: root, env: { ...process.env, O365_OUTPUTS_FILE: '' } }, (error, stdout, stderr) => {
      done({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
    });
  });
}

function failure(action: () => unknown): ConfigError {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('the settings table', () => {
  it('gives every setting a default inside its own bounds', () => {
    for (const name of settingNames) {
      const spec = settingSpecs[name];
      expect([name, spec.schema.safeParse(spec.default).success]).toEqual([name, true]);
      expect(spec.min).toBeLessThanOrEqual(spec.default);
      expect(spec.max).toBeGreaterThanOrEqual(spec.default);
      expect([name, spec.schema.safeParse(spec.min - 1).success, spec.schema.safeParse(spec.max + 1).success]).toEqual([name, false, false]);
    }
  });

  it('turns commander\'s options into settings: text parsed, absent ones from the defaults', () => {
    expect(runSettingsFrom({})).toEqual(defaultRunSettings);
    expect(runSettingsFrom({ overlap: '30', pollInterval: 5, batchMaxWait: ' 0 ', requestsPerMinute: '100000', once: true })).toEqual({
      ...defaultRunSettings, overlapMinutes: 30, pollIntervalSeconds: 5, batchMaxWaitMs: 0, requestsPerMinute: 100_000,
    });
  });

  it.each([
    ['overlapMinutes', '99999', '--overlap: 99999 is outside 0 to 10080 minutes', 'give a whole number from 0 to 10080, or leave --overlap out for its default, 240'],
    ['pollIntervalSeconds', '0', '--poll-interval: 0 is outside 1 to 86400 seconds', 'give a whole number from 1 to 86400, or leave --poll-interval out for its default, 60'],
    ['pollIntervalSeconds', '1.5', '--poll-interval: "1.5" is not a whole number of seconds', 'give a whole number from 1 to 86400, or leave --poll-interval out for its default, 60'],
    ['requestsPerMinute', '1e3', '--requests-per-minute: "1e3" is not a whole number', 'give a whole number from 1 to 1000000, or leave --requests-per-minute out for its default, 2000'],
    ['fetchConcurrency', '0x10', '--fetch-concurrency: "0x10" is not a whole number', 'give a whole number from 1 to 64, or leave --fetch-concurrency out for its default, 8'],
    ['batchMaxBytes', '', '--batch-max-bytes: "" is not a whole number of bytes', 'give a whole number from 1024 to 1073741824, or leave --batch-max-bytes out for its default, 1048576'],
  ] as const)('refuses %s = %j with one line naming the flag, its bounds and the fix', (name, value, message, fix) => {
    const error = failure(() => parseSetting(name, value));
    expect(error.code).toBe('CONFIG_INVALID');
    expect(error.field).toBe(`--${settingSpecs[name].flag}`);
    expect(error.message).toBe(message);
    expect(error.fix).toBe(fix);
    expect(error.toLine()).not.toContain('\n');
  });

  it('refuses an invalid option in the commander options with the same message', () => {
    expect(failure(() => runSettingsFrom({ safetyLag: '-5' })).message).toBe('--safety-lag: -5 is outside 0 to 1440 minutes');
  });
});

describe('the settings in the docs and the CLI', () => {
  it('has the settings table of docs/settings.md equal to the generated one (npm run docs rewrites it)', async () => {
    const readme = await readFile(resolve(root, 'docs/settings.md'), 'utf8');
    expect(readme).toContain(`${settingsMarkers.start}\n${settingsTableMarkdown()}\n${settingsMarkers.end}`);
    expect(withSettingsTable(readme)).toBe(readme);
  });

  it('lists each setting in `run --help` with its default', async () => {
    const help = await cli(['run', '--help']);
    expect(help.code).toBe(0);
    // One entry per option: its first line starts with the flag, continuation lines are indented further.
    const entries = help.stdout.split(/\n(?= {2}-)/).map((entry) => entry.replace(/\s+/g, ' ').trim());
    for (const name of settingNames) {
      const spec = settingSpecs[name];
      const entry = entries.find((text) => text.startsWith(`--${spec.flag} <${spec.unit}>`));
      expect(entry, `--${spec.flag} in run --help`).toBeDefined();
      expect(entry).toMatch(new RegExp(`\\(default: ${spec.default}\\)$`));
    }
  });

  it('stops with exit 2 and one line when a setting flag is out of range, global or not', async () => {
    const run = await cli(['run', '--once', '--overlap', '99999']);
    expect(run.code).toBe(2);
    expect(run.stderr).toBe('error: CONFIG_INVALID: --overlap: 99999 is outside 0 to 10080 minutes. Fix: give a whole number from 0 to 10080, or leave --overlap out for its default, 240\n');
    const test = await cli(['test', '--max-in-flight', '0']);
    expect(test.code).toBe(2);
    expect(test.stderr).toMatch(/^error: CONFIG_INVALID: --max-in-flight: 0 is outside 1 to 64\. Fix: .*default, 8\n$/);
  });
});
