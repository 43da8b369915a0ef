/**
 * Every tunable of `run`, defined once: its flag, its default, its bounds and its help text. The CLI builds its
 * options from this table, the pipeline reads the parsed values, and the README's settings table is generated
 * from it (a test keeps them equal).
 */
import { z } from 'zod';

interface SettingSpec {
  /** The long flag without dashes, e.g. `poll-interval`. */
  readonly flag: string;
  /** What the value is, for the flag's help: `<seconds>`. */
  readonly unit: string;
  readonly help: string;
  readonly schema: z.ZodType<number>;
  readonly default: number;
}

const whole = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

export const settingSpecs = {
  pollIntervalSeconds: { flag: 'poll-interval', unit: 'seconds', default: 60, schema: whole(1, 86_400), help: 'seconds between passes of a content type when not --once' },
  overlapMinutes: { flag: 'overlap', unit: 'minutes', default: 240, schema: whole(0, 7 * 24 * 60), help: 'minutes behind the checkpoint listed again on every pass, for content that becomes available late' },
  safetyLagMinutes: { flag: 'safety-lag', unit: 'minutes', default: 15, schema: whole(0, 24 * 60), help: 'the checkpoint stays at least this far behind server time (the newest minutes are still filling)' },
  fetchConcurrency: { flag: 'fetch-concurrency', unit: 'n', default: 8, schema: whole(1, 64), help: 'content blobs fetched ahead at once, across content types' },
  maxInFlight: { flag: 'max-in-flight', unit: 'n', default: 8, schema: whole(1, 64), help: 'API requests in flight at most' },
  requestsPerMinute: { flag: 'requests-per-minute', unit: 'n', default: 2000, schema: whole(1, 1_000_000), help: 'ceiling of the request rate; the connector starts just under it, slows down on AF429 and recovers gradually (the tenant quota is about 2,000/min)' },
  batchMaxRecords: { flag: 'batch-max-records', unit: 'n', default: 5000, schema: whole(1, 1_000_000), help: 'records per sink batch at most' },
  batchMaxBytes: { flag: 'batch-max-bytes', unit: 'bytes', default: 8 * 1024 * 1024, schema: whole(1024, 1024 * 1024 * 1024), help: 'bytes of records per sink batch at most (a larger single record goes alone)' },
  batchMaxWaitMs: { flag: 'batch-max-wait', unit: 'ms', default: 1000, schema: whole(0, 600_000), help: 'a batch is written once its oldest record waited this long for more' },
  dedupeRetentionHours: { flag: 'dedupe-retention', unit: 'hours', default: 8 * 24, schema: whole(1, 90 * 24), help: 'how long delivered record Ids are remembered to drop repeats (Microsoft keeps content 7 days and repeats records days later)' },
  stateLockWaitSeconds: { flag: 'state-lock-wait', unit: 'seconds', default: 15, schema: whole(0, 3600), help: 'how long to wait for the state lock of a predecessor that is still exiting' },
} as const satisfies Record<string, SettingSpec>;

export type SettingName = keyof typeof settingSpecs;
export type RunSettings = { readonly [K in SettingName]: number };

export const defaultRunSettings: RunSettings = Object.fromEntries(
  Object.entries(settingSpecs).map(([name, spec]) => [name, spec.default]),
) as RunSettings;
