import { contentTypes, type ContentType } from '../api/content-types.ts';
import type { Subscription } from '../api/activity-api.ts';
import { readState } from '../state/file-state-store.ts';
import type { ExpiredContent } from '../state/state.ts';

export type Health = 'Active' | 'Degraded' | 'Inactive';

export interface ContentTypeStatus {
  contentType: ContentType;
  subscription: string;
  checkpoint: string | undefined;
  lagSeconds: number | undefined;
  lastContentSeen: string | undefined;
  recordsDelivered: number;
  duplicatesDropped: number;
  expiredCount: number;
  lastExpired: ExpiredContent | undefined;
  lastError: { code: string; message: string; at: string } | undefined;
  health: Health;
}

export interface StatusReport {
  overall: Health;
  stateDir: string;
  updatedAt: string | undefined;
  contentTypes: ContentTypeStatus[];
}

/** Lag beyond which a content type counts as Degraded: the API's usual latency plus a few poll intervals. */
export const lagThresholdSeconds = 2 * 3600;

/** Reads only the state directory (works offline); subscriptions, when given, come from a live list call. */
export async function buildStatusReport(options: { stateDir: string; subscriptions?: Subscription[]; now?: () => Date }): Promise<StatusReport> {
  const now = (options.now ?? (() => new Date()))();
  const state = await readState(options.stateDir);
  const rows: ContentTypeStatus[] = [];
  for (const contentType of contentTypes) {
    const cursor = state?.cursors[contentType];
    const live = options.subscriptions?.find((s) => s.contentType === contentType);
    if (!cursor && !live) continue;
    const lagSeconds = cursor?.checkpoint ? Math.max(0, Math.round((now.getTime() - Date.parse(cursor.checkpoint)) / 1000)) : undefined;
    const subscription = live ? (live.status ?? 'not started') : 'unknown (offline)';
    let health: Health = 'Active';
    if (!cursor?.checkpoint || (live && live.status !== 'enabled')) health = 'Inactive';
    else if (cursor.lastError || cursor.expiredCount > 0 || (lagSeconds ?? 0) > lagThresholdSeconds) health = 'Degraded';
    rows.push({
      contentType, subscription, checkpoint: cursor?.checkpoint, lagSeconds, lastContentSeen: cursor?.lastContentSeen,
      recordsDelivered: cursor?.recordsDelivered ?? 0, duplicatesDropped: cursor?.duplicatesDropped ?? 0,
      expiredCount: cursor?.expiredCount ?? 0, lastExpired: cursor?.expired.at(-1), lastError: cursor?.lastError, health,
    });
  }
  // Subscriptions that this state directory never collected (another connector's, or not yet run) are listed
  // but do not decide this connector's health.
  const collected = rows.filter((r) => r.checkpoint !== undefined || r.lastError !== undefined);
  const overall: Health = collected.length === 0 || collected.every((r) => r.health === 'Inactive')
    ? 'Inactive'
    : collected.some((r) => r.health !== 'Active') ? 'Degraded' : 'Active';
  return { overall, stateDir: options.stateDir, updatedAt: state?.updatedAt, contentTypes: rows };
}

function lag(seconds: number | undefined): string {
  if (seconds === undefined) return '-';
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  return `${(seconds / 3600).toFixed(1)}h`;
}

export function formatStatusReport(report: StatusReport): string {
  const lines = [`Overall: ${report.overall}   (state ${report.stateDir}, saved ${report.updatedAt ?? 'never'})`];
  if (report.contentTypes.length === 0) {
    lines.push('No content type has been collected yet: run `npx o365-connector run`.');
    return lines.join('\n') + '\n';
  }
  const header = ['content type', 'health', 'subscription', 'checkpoint', 'lag', 'last content', 'records', 'dupes', 'expired'];
  const table = report.contentTypes.map((r) => [
    r.contentType, r.health, r.subscription, r.checkpoint ?? '-', lag(r.lagSeconds), r.lastContentSeen ?? '-',
    String(r.recordsDelivered), String(r.duplicatesDropped), String(r.expiredCount),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
  for (const row of [header, ...table]) lines.push(row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
  for (const r of report.contentTypes) {
    if (r.lastError) lines.push(`${r.contentType}: last error at ${r.lastError.at}: ${r.lastError.message}`);
    if (r.lastExpired) lines.push(`${r.contentType}: ${r.expiredCount} blob(s) expired before they could be fetched; last ${r.lastExpired.contentId} (created ${r.lastExpired.contentCreated})`);
  }
  return lines.join('\n') + '\n';
}
