/**
 * A cursor as both stores keep it (one row of `cursors`, the same columns in SQLite and PostgreSQL), and how a
 * commit moves it: one implementation, so the two stores cannot count differently.
 */
import type { CollectedType } from '../../contract/content-types.ts';
import { ConnectorError } from '../core/errors.ts';
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
}

export interface ExpiredRow { content_type: CollectedType; content_id: string; content_created: string; detected_at: string }

/** Every column of a cursor row, the key (tenant, content_type) first. */
export const cursorColumns = ['tenant', 'content_type', 'checkpoint', 'records_delivered', 'blobs_delivered', 'duplicates_dropped', 'expired_count', 'last_content_seen',
  'last_delivery_at', 'last_error_code', 'last_error_message', 'last_error_at', 'held_blobs', 'updated_at',
  'covered_from', 'late_blobs', 'max_lateness_ms', 'last_sweep_at', 'service_health', 'api_rate'] as const satisfies ReadonlyArray<keyof CursorRow>;

/** The columns a commit replaces (all but the key). */
export const cursorValueColumns = cursorColumns.slice(2);

export function emptyCursorRow(tenant: string, contentType: CollectedType): CursorRow {
  return {
    tenant, content_type: contentType, checkpoint: null, records_delivered: 0, blobs_delivered: 0, duplicates_dropped: 0, expired_count: 0,
    last_content_seen: null, last_delivery_at: null, last_error_code: null, last_error_message: null, last_error_at: null, held_blobs: 0, updated_at: null,
    covered_from: null, late_blobs: 0, max_lateness_ms: 0, last_sweep_at: null, service_health: null, api_rate: null,
  };
}

/** The cursor after a commit: counters add up, the rest is replaced when the commit says so. */
export function nextCursor(row: CursorRow, commit: Commit): CursorRow {
  const expiredIds = new Set(commit.expired?.map((e) => e.contentId));
  // Expired blobs are listed in `blobs` too (never fetch them again), but were not delivered.
  const delivered = (commit.blobs ?? []).filter((blob) => !expiredIds.has(blob.contentId));
  let lastContentSeen = row.last_content_seen;
  for (const blob of delivered) {
    if (lastContentSeen === null || epochMs(blob.contentCreated, 'blobs[].contentCreated') > Date.parse(lastContentSeen)) lastContentSeen = blob.contentCreated;
  }
  const records = commit.records ?? 0;
  const error = commit.lastError === undefined ? row : {
    last_error_code: commit.lastError?.code ?? null, last_error_message: commit.lastError?.message ?? null, last_error_at: commit.lastError?.at ?? null,
  };
  return {
    ...row,
    checkpoint: commit.checkpoint ?? row.checkpoint,
    records_delivered: row.records_delivered + records,
    blobs_delivered: row.blobs_delivered + delivered.length,
    duplicates_dropped: row.duplicates_dropped + (commit.duplicates ?? 0),
    expired_count: row.expired_count + (commit.expired?.length ?? 0),
    last_content_seen: lastContentSeen,
    last_delivery_at: records > 0 ? commit.at : row.last_delivery_at,
    last_error_code: error.last_error_code, last_error_message: error.last_error_message, last_error_at: error.last_error_at,
    held_blobs: commit.heldBlobs ?? row.held_blobs,
    updated_at: commit.at,
    // The earliest start ever covered stands: a later pass never narrows it.
    covered_from: row.covered_from ?? commit.coveredFrom ?? null,
    late_blobs: row.late_blobs + (commit.late?.length ?? 0),
    max_lateness_ms: Math.max(row.max_lateness_ms, ...(commit.late ?? []).map((late) => late.latenessMs)),
    last_sweep_at: commit.sweptAt ?? row.last_sweep_at,
    service_health: commit.serviceHealth === undefined ? row.service_health ?? null : JSON.stringify(commit.serviceHealth),
    api_rate: commit.apiRate === undefined ? row.api_rate ?? null : JSON.stringify(commit.apiRate),
  };
}

/**
 * The cursor a row holds. A checkpoint that is not a time is STATE_CORRUPT: `where` names the database, `fix`
 * says how to repair it in that store.
 */
export function cursorOf(row: CursorRow, expired: CursorState['expired'], where: string, fix: (row: CursorRow) => string): CursorState {
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
    expired,
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

/** Groups expired rows (ordered by content type, then seq) by content type. */
export function expiredByContentType(rows: readonly ExpiredRow[]): Map<CollectedType, CursorState['expired'][number][]> {
  const expired = new Map<CollectedType, CursorState['expired'][number][]>();
  for (const row of rows) {
    const list = expired.get(row.content_type) ?? [];
    list.push({ contentId: row.content_id, contentCreated: row.content_created, detectedAt: row.detected_at });
    expired.set(row.content_type, list);
  }
  return expired;
}

/** A commit without contentType may carry sink positions and nothing else. */
export function assertPositionsOnly(commit: Commit): void {
  if (Object.entries(commit).some(([key, value]) => value !== undefined && key !== 'at' && key !== 'sinkPositions')) {
    throw new TypeError('a commit without contentType may only carry sink positions');
  }
}

export function epochMs(iso: string, field: string): number {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new TypeError(`commit.${field} is not a timestamp: ${iso}`);
  return ms;
}
