/**
 * A cursor as both stores keep it (one row of `cursors`, the same columns in SQLite and PostgreSQL), and how it
 * reads: one implementation, so the two stores cannot differ.
 */
import type { CollectedType } from '../../contract/content-types.ts';
import { ConnectorError } from '../core/errors.ts';
import { readHistory } from '../core/history.ts';
import type { ApiRateSample, Commit, CursorState, ServiceHealthSample } from '../core/commit.ts';

export interface CursorRow {
  tenant: string;
  content_type: CollectedType;
  checkpoint: string | null;
  records_delivered: number;
  blobs_delivered: number;
  duplicates_dropped: number;
  expired_count: number;
  last_content_seen: string | null;
  last_delivery_at: string | null;
  last_error_code: string | null;
  last_error_message: string | null;
  last_error_at: string | null;
  held_blobs: number;
  updated_at: string | null;
  covered_from: string | null;
  late_blobs: number;
  max_lateness_ms: number;
  last_sweep_at: string | null;
  /** ServiceHealth only: the last health overview sample (ServiceHealthSample as JSON). */
  service_health: string | null;
  /** The tenant's request rate at the last commit (ApiRateSample as JSON). */
  api_rate: string | null;
  /** Audit content types: history beyond the API's 7 days (HistoryState as JSON). */
  history: string | null;
}

export interface ExpiredRow { content_type: CollectedType; content_id: string; content_created: string; detected_at: string }

/** Every column of a cursor row, the key (tenant, content_type) first. */
export const cursorColumns = ['tenant', 'content_type', 'checkpoint', 'records_delivered', 'blobs_delivered', 'duplicates_dropped', 'expired_count', 'last_content_seen',
  'last_delivery_at', 'last_error_code', 'last_error_message', 'last_error_at', 'held_blobs', 'updated_at',
  'covered_from', 'late_blobs', 'max_lateness_ms', 'last_sweep_at', 'service_health', 'api_rate', 'history'] as const satisfies ReadonlyArray<keyof CursorRow>;

/**
 * The cursors the rows hold (in their order), each with its expired blobs (`expired` ordered by content type,
 * then seq). A checkpoint that is not a time is STATE_CORRUPT: `where` names the database, `fix` says how to
 * repair it in that store.
 */
export function cursorsOf(rows: readonly CursorRow[], expired: readonly ExpiredRow[], where: string, fix: (row: CursorRow) => string): Map<CollectedType, CursorState> {
  const expiredOf = Map.groupBy(expired, (row) => row.content_type);
  return new Map(rows.map((row) => [row.content_type, cursorOf(row, expiredOf.get(row.content_type) ?? [], where, fix)]));
}

function cursorOf(row: CursorRow, expiredRows: readonly ExpiredRow[], where: string, fix: (row: CursorRow) => string): CursorState {
  if (row.checkpoint !== null && !Number.isFinite(Date.parse(row.checkpoint))) {
    throw new ConnectorError('STATE_CORRUPT', `${where}: the checkpoint of ${row.tenant === '' ? '' : `${row.tenant}/`}${row.content_type}, ${JSON.stringify(row.checkpoint)}, is not a time`, { fix: fix(row) });
  }
  return {
    contentType: row.content_type,
    checkpoint: row.checkpoint ?? undefined,
    recordsDelivered: Number(row.records_delivered),
    blobsDelivered: Number(row.blobs_delivered),
    duplicatesDropped: Number(row.duplicates_dropped),
    expiredCount: Number(row.expired_count),
    expired: expiredRows.map((e) => ({ contentId: e.content_id, contentCreated: e.content_created, detectedAt: e.detected_at })),
    lastContentSeen: row.last_content_seen ?? undefined,
    lastDeliveryAt: row.last_delivery_at ?? undefined,
    lastError: row.last_error_code === null ? undefined : { code: row.last_error_code, message: row.last_error_message ?? '', at: row.last_error_at ?? '' },
    heldBlobs: Number(row.held_blobs),
    updatedAt: row.updated_at ?? undefined,
    coveredFrom: row.covered_from ?? undefined,
    lateBlobs: Number(row.late_blobs),
    maxLatenessMs: Number(row.max_lateness_ms),
    lastSweepAt: row.last_sweep_at ?? undefined,
    ...(row.service_health ? { serviceHealth: readServiceHealth(row.service_health) } : {}),
    ...(row.api_rate ? { apiRate: readApiRate(row.api_rate) } : {}),
    ...(row.history ? { history: readHistory(row.history) } : {}),
  };
}

/** A stored rate; an unreadable one reads as none rather than stopping `status`. */
function readApiRate(text: string): ApiRateSample | undefined {
  try {
    const sample = JSON.parse(text) as ApiRateSample;
    return typeof sample?.at === 'string' && typeof sample.perMinute === 'number' ? sample : undefined;
  } catch {
    return undefined;
  }
}

/** A stored sample; an unreadable one (edited by hand) reads as none rather than stopping `status`. */
function readServiceHealth(text: string): ServiceHealthSample | undefined {
  try {
    const sample = JSON.parse(text) as ServiceHealthSample;
    return typeof sample?.at === 'string' && Array.isArray(sample.services) ? sample : undefined;
  } catch {
    return undefined;
  }
}

/** A commit without contentType may carry sink positions and nothing else. */
export function assertPositionsOnly(commit: Commit): void {
  if (Object.entries(commit).some(([key, value]) => value !== undefined && key !== 'at' && key !== 'sinkPositions')) {
    throw new TypeError('a commit without contentType may only carry sink positions');
  }
}
