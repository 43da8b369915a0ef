import type { ContentType } from '../api/content-types.ts';
import type { SinkPosition } from '../sinks/sink.ts';

export interface ExpiredContent {
  readonly contentId: string;
  readonly contentCreated: string;
  readonly detectedAt: string;
}

/** Where one content type stands. Holds no secret. */
export interface Cursor {
  /** Every blob listed with contentCreated before this instant was delivered (or recorded as expired). */
  checkpoint: string | undefined;
  /** contentId -> contentCreated of blobs delivered in the re-listed overlap, so they are not delivered twice. */
  delivered: Record<string, string>;
  /** Record Ids recently delivered, with the contentCreated of their blob (ms), for de-duplication across blobs. */
  recentIds: Array<[string, number]>;
  recordsDelivered: number;
  blobsDelivered: number;
  duplicatesDropped: number;
  expiredCount: number;
  /** The latest expired blobs, newest last (bounded). */
  expired: ExpiredContent[];
  lastContentSeen: string | undefined;
  lastDeliveryAt: string | undefined;
  lastError: { code: string; message: string; at: string } | undefined;
}

export interface ConnectorState {
  version: 1;
  cursors: Partial<Record<ContentType, Cursor>>;
  /** Each sink's position as of the last save, keyed by sink name. */
  sinkPositions: Record<string, SinkPosition>;
  updatedAt: string | undefined;
  lastRun: { startedAt: string; finishedAt: string | undefined; mode: 'once' | 'continuous' } | undefined;
}

export function emptyState(): ConnectorState {
  return { version: 1, cursors: {}, sinkPositions: {}, updatedAt: undefined, lastRun: undefined };
}

export function emptyCursor(): Cursor {
  return {
    checkpoint: undefined, delivered: {}, recentIds: [], recordsDelivered: 0, blobsDelivered: 0, duplicatesDropped: 0,
    expiredCount: 0, expired: [], lastContentSeen: undefined, lastDeliveryAt: undefined, lastError: undefined,
  };
}

export interface StateStore {
  load(): Promise<ConnectorState>;
  /** Durable when it resolves: a crash afterwards finds this state, a crash during it finds the previous one. */
  save(state: ConnectorState): Promise<void>;
  close(): Promise<void>;
}
