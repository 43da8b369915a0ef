import { retentionMs, type TimeWindow } from './activity-api.ts';

const minute = 60_000;
const day = 24 * 60 * minute;

export interface WindowPlanInput {
  /** Where the cursor stands; undefined on a first run. */
  readonly checkpoint: Date | undefined;
  /** First-run starting point (e.g. 7 days back). */
  readonly since: Date;
  /** Local time now. */
  readonly now: Date;
  /** Server time minus local time, from the API's Date header. */
  readonly skewMs: number;
  /** How far behind the checkpoint to list again, for blobs that show up after their contentCreated. */
  readonly overlapMs: number;
}

/** The retention the API enforces (7 days), less a margin so that a window is never rejected for its start. */
export const retentionMarginMs = 15 * minute;

/** The oldest instant (ms, server time) a window may start at: the API's 7-day retention less the margin. */
export function earliestListable(serverNowMs: number): number {
  return Math.ceil((serverNowMs - retentionMs + retentionMarginMs) / 1000) * 1000;
}

/** The furthest a checkpoint may stand: server time now less the safety lag, in whole seconds. */
export function checkpointCeiling(now: Date, skewMs: number, safetyLagMs: number): number {
  return Math.floor((now.getTime() + skewMs - safetyLagMs) / 1000) * 1000;
}

/**
 * Plans the listing windows for one content type: from the checkpoint (less the overlap) or `since`, clamped to
 * the API's 7-day retention in server time, cut into windows of at most 24 hours, ending at server time now.
 */
export function planWindows(input: WindowPlanInput): TimeWindow[] {
  const serverNow = input.now.getTime() + input.skewMs;
  // Whole seconds: the API's time format has no fractions, and a window must not round to an empty one.
  const end = Math.floor(serverNow / 1000) * 1000;
  const from = input.checkpoint ? input.checkpoint.getTime() - input.overlapMs : input.since.getTime();
  return cutWindows(Math.max(Math.floor(from / 1000) * 1000, earliestListable(serverNow)), end);
}

/** [from, to) in windows of at most 24 hours (the API's limit), none when it is empty. */
function cutWindows(from: number, to: number): TimeWindow[] {
  const windows: TimeWindow[] = [];
  for (let start = from; start < to;) {
    const stop = Math.min(start + day, to);
    windows.push({ start: new Date(start), end: new Date(stop) });
    start = stop;
  }
  return windows;
}

/**
 * What a sweep lists: from where the state's coverage begins (never before the API's limit, in server time) to
 * where the live passes list again from (the checkpoint less the overlap), in whole seconds.
 */
export function sweepWindows(input: { coveredFrom: number; checkpoint: number; overlapMs: number; now: Date; skewMs: number }): TimeWindow[] {
  const from = Math.max(Math.ceil(input.coveredFrom / 1000) * 1000, earliestListable(input.now.getTime() + input.skewMs));
  return cutWindows(from, Math.floor((input.checkpoint - input.overlapMs) / 1000) * 1000);
}
