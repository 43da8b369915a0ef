/**
 * Every tunable of `run`, defined once: its flag, its default, its bounds and its help text. The CLI builds its
 * options from this table, the pipeline reads the parsed values, and the settings table of docs/settings.md is generated
 * from it (`npm run docs`; a test keeps them equal).
 */
import { z } from 'zod';
import { ConfigError } from '../core/errors.ts';

interface SettingSpec {
  /** The long flag without dashes, e.g. `poll-interval`. */
  readonly flag: string;
  /** What the value is, for the flag's help: `<seconds>`. */
  readonly unit: string;
  readonly help: string;
  readonly schema: z.ZodType<number>;
  readonly default: number;
  /** Bounds, inclusive; the schema enforces them, messages, `run --help` and docs/settings.md quote them. */
  readonly min: number;
  readonly max: number;
  /** A global option: `test`, `status` and `subscriptions` build the API client too. */
  readonly global?: boolean;
}

/**
 * A whole number within bounds, from a number or from the flag's text. Only plain decimal digits count: `1e3`,
 * `0x10`, `12.5` and an empty string are refused rather than read as something else.
 */
const whole = (min: number, max: number) => ({
  min, max,
  schema: z.preprocess((value) => (typeof value === 'string' && /^\s*-?\d+\s*$/.test(value) ? Number(value) : value), z.number().int().min(min).max(max)),
});

export const settingSpecs = {
  pollIntervalSeconds: { flag: 'poll-interval', unit: 'seconds', default: 60, ...whole(1, 86_400), help: 'seconds between passes of a content type when not --once' },
  overlapMinutes: { flag: 'overlap', unit: 'minutes', default: 240, ...whole(0, 7 * 24 * 60), help: 'minutes behind the checkpoint listed again on every pass, for content that becomes available late' },
  sweepIntervalMinutes: { flag: 'sweep-interval', unit: 'minutes', default: 60, ...whole(1, 24 * 60), help: 'minutes between sweeps: listings of the whole range the state covers (up to the API\'s 7 days), at a priority below live collection, that deliver blobs Microsoft listed late (run --once sweeps once, at its end)' },
  safetyLagMinutes: { flag: 'safety-lag', unit: 'minutes', default: 15, ...whole(0, 24 * 60), help: 'the checkpoint stays at least this far behind server time (the newest minutes are still filling)' },
  fetchConcurrency: { flag: 'fetch-concurrency', unit: 'n', default: 8, ...whole(1, 64), help: 'content blobs fetched ahead at once, across content types' },
  maxInFlight: { flag: 'max-in-flight', unit: 'n', default: 8, ...whole(1, 64), global: true, help: 'API requests in flight at most' },
  requestsPerMinute: { flag: 'requests-per-minute', unit: 'n', default: 2000, ...whole(1, 1_000_000), global: true, help: 'ceiling of the request rate; the connector starts just under it, learns from AF429 the rate the service takes and stays just under that (the tenant quota is about 2,000/min); throttling slows a run, it never fails it' },
  batchMaxRecords: { flag: 'batch-max-records', unit: 'n', default: 5000, ...whole(1, 1_000_000), help: 'records per sink batch at most' },
  batchMaxBytes: { flag: 'batch-max-bytes', unit: 'bytes', default: 1024 * 1024, ...whole(1024, 1024 * 1024 * 1024), help: 'bytes of records per sink batch at most (a larger single record goes alone)' },
  batchMaxWaitMs: { flag: 'batch-max-wait', unit: 'ms', default: 1000, ...whole(0, 600_000), help: 'a batch is written once its oldest record waited this long for more' },
  dedupeRetentionHours: { flag: 'dedupe-retention', unit: 'hours', default: 10 * 24, ...whole(1, 90 * 24), help: 'how long after its CreationTime a delivered record is remembered, to drop repeats (Microsoft keeps content 7 days, repeats records days later, and lists some blobs days after their events); kept in the state directory, not in memory' },
  maxBlobBytes: { flag: 'max-blob-bytes', unit: 'bytes', default: 64 * 1024 * 1024, ...whole(65_536, 1024 * 1024 * 1024), help: 'a content blob larger than this is not read: it is held (it holds the checkpoint) and status names it; Microsoft\'s blobs are far smaller' },
  requestDeadlineSeconds: { flag: 'request-deadline', unit: 'seconds', default: 300, ...whole(5, 3600), help: 'time for one whole API answer, headers and body, before it is abandoned and retried (a body trickled byte by byte never hangs the connector)' },
  historyQueries: { flag: 'history-queries', unit: 'n', default: 3, ...whole(0, 10), help: 'audit search queries a tenant runs at once to read history beyond the API\'s 7 days (a first run\'s --since further back, or a checkpoint older after downtime), at a priority below live collection; 0 reads no history' },
  historyWindowHours: { flag: 'history-window', unit: 'hours', default: 24, ...whole(1, 24), help: 'hours of records one audit search query asks for at most (a query that reaches its record limit is split in two)' },
  historyPollMs: { flag: 'history-poll', unit: 'ms', default: 5000, ...whole(100, 600_000), help: 'first wait before asking whether an audit search query has finished; the wait doubles up to a minute' },
  historyReachDays: { flag: 'history-reach', unit: 'days', default: 180, ...whole(1, 3650), help: 'how far back the audit search keeps records: 180 days with Audit Standard, a year or more with Audit Premium; history is not asked from further back' },
  tenantsScanSeconds: { flag: 'tenants-scan-interval', unit: 'seconds', default: 10, ...whole(1, 3600), help: 'fleet mode (--tenants): seconds between two reads of the tenants directory (a file added, changed or removed takes effect within this)' },
  claimIntervalSeconds: { flag: 'claim-interval', unit: 'seconds', default: 2, ...whole(1, 300), help: 'fleet mode: seconds between two looks at which units are free; a stopped or killed worker\'s units are taken over within about this' },
  stalledAfterSeconds: { flag: 'stalled-after', unit: 'seconds', default: 120, ...whole(2, 86_400), global: true, help: 'collection counts as stalled once the state database has been unreachable, a sink has acknowledged no batch, or a unit held has committed nothing for this long: /readyz answers 503 and o365_collection_active is 0 (run), status of a fleet\'s database says Degraded (a unit whose last commit is older, or held by no worker); keep it above --poll-interval, as every pass commits' },
  stateLockWaitSeconds: { flag: 'state-lock-wait', unit: 'seconds', default: 15, ...whole(0, 3600), help: 'how long to wait for the locks of the state directory and of file sinks, held by a predecessor that is still exiting' },
} as const satisfies Record<string, SettingSpec>;

export type SettingName = keyof typeof settingSpecs;
export type RunSettings = { readonly [K in SettingName]: number };

export const defaultRunSettings: RunSettings = Object.fromEntries(
  Object.entries(settingSpecs).map(([name, spec]) => [name, spec.default]),
) as RunSettings;

export const settingNames = Object.keys(settingSpecs) as SettingName[];

/** The key commander stores a flag's value under: `poll-interval` -> `pollInterval`. */
function optionKey(name: SettingName): string {
  return settingSpecs[name].flag.replace(/-([a-z])/g, (_match, letter: string) => letter.toUpperCase());
}

const unitOf = (spec: SettingSpec) => (spec.unit === 'n' ? '' : ` ${spec.unit}`);

/** One setting's value (a flag's text or a number) through its schema; invalid is one ConfigError naming the flag. */
export function parseSetting(name: SettingName, value: unknown): number {
  const spec: SettingSpec = settingSpecs[name];
  const parsed = spec.schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const flag = `--${spec.flag}`;
  const fix = `give a whole number from ${spec.min} to ${spec.max}, or leave ${flag} out for its default, ${spec.default}`;
  if (parsed.error.issues.some((issue) => issue.code === 'too_small' || issue.code === 'too_big')) {
    throw new ConfigError(flag, `${String(value).trim()} is outside ${spec.min} to ${spec.max}${unitOf(spec)}`, fix);
  }
  throw new ConfigError(flag, `${JSON.stringify(String(value))} is not a whole number${unitOf(spec) ? ` of${unitOf(spec)}` : ''}`, fix);
}

/**
 * The validated settings from commander's parsed options (keys as `optionKey` names them); a setting that is not
 * among them takes its default.
 */
export function runSettingsFrom(options: object): RunSettings {
  return Object.fromEntries(settingNames.map((name) => {
    const value = (options as Readonly<Record<string, unknown>>)[optionKey(name)];
    return [name, value === undefined ? settingSpecs[name].default : parseSetting(name, value)];
  })) as RunSettings;
}

/** A setting's range as `run --help` and the settings table print it: `1–86400 seconds`. */
export function settingRange(name: SettingName): string {
  const spec: SettingSpec = settingSpecs[name];
  return `${spec.min}–${spec.max}${unitOf(spec)}`;
}

const markdownCell = (text: string) => text.replace(/\|/g, '\\|');

/** The settings table of docs/settings.md (Markdown), one row per setting in table order. */
export function settingsTableMarkdown(): string {
  const rows = settingNames.map((name) => {
    const spec: SettingSpec = settingSpecs[name];
    const scope = spec.global ? ' Global option: `test`, `status` and `subscriptions` take it too.' : '';
    const meaning = `${spec.help.charAt(0).toUpperCase()}${spec.help.slice(1)}.${scope}`;
    return `| \`--${spec.flag} <${spec.unit}>\` | ${spec.default} | ${spec.min}–${spec.max} | ${markdownCell(meaning)} |`;
  });
  return ['| flag | default | range | meaning |', '| --- | --- | --- | --- |', ...rows].join('\n');
}

export const settingsMarkers = { start: '<!-- settings:start -->', end: '<!-- settings:end -->' } as const;

/** `page` (docs/settings.md) with the text between the settings markers replaced by the generated table. */
export function withSettingsTable(page: string): string {
  const start = page.indexOf(settingsMarkers.start);
  const end = page.indexOf(settingsMarkers.end);
  if (start < 0 || end < start) throw new Error(`docs/settings.md has no ${settingsMarkers.start} … ${settingsMarkers.end} section`);
  return `${page.slice(0, start + settingsMarkers.start.length)}\n${settingsTableMarkdown()}\n${page.slice(end)}`;
}
