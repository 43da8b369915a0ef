import type { ContentType } from '../api/content-types.ts';
import type { SinkPosition } from '../sinks/sink.ts';

export interface ExpiredContent {
  readonly contentId: string;
  readonly contentCreated: string;
  readonly detectedAt: string;
}

export interface LastError {
  readonly code: string;
  readonly message: string;
  readonly at: string;
}

/**
 * Where one content type stands: the whole content of its state file. Holds no secret (no token, no sink
 * credential: sink names are specs with secrets removed, positions are offsets).
 */
export interface ContentTypeState {
  version: 2;
  contentType: ContentType;
  /**
   * Commit order across all content types of the state directory. The file with the highest sequence holds
   * the sink positions that match every file's checkpoint (each commit happens right after its sink writes,
   * before any other content type may write), so that is the one a restart resumes the sinks from.
   */
  sequence: number;
  /** Every blob listed with contentCreated before this instant was delivered (or recorded as expired). */
  checkpoint: string | undefined;
  /** contentId -> contentCreated of blobs delivered at or after the re-listed horizon, so they are not delivered twice. */
  delivered: Record<string, string>;
  /** Record Ids recently delivered, with the contentCreated (ms) of their blob, for de-duplication across blobs. */
  recentIds: Array<[string, number]>;
  /** Each sink's position as of this commit, keyed by sink name. */
  sinkPositions: Record<string, SinkPosition>;
  recordsDelivered: number;
  blobsDelivered: number;
  duplicatesDropped: number;
  expiredCount: number;
  /** The latest expired blobs, newest last (bounded). */
  expired: ExpiredContent[];
  /** Newest contentCreated among delivered blobs. */
  lastContentSeen: string | undefined;
  lastDeliveryAt: string | undefined;
  /** The last failure of a pass (listing, fetching after the client's retries); cleared by a clean pass. */
  lastError: LastError | undefined;
  /** Blobs whose fetch failed in the last pass and will be fetched again (they hold the checkpoint). */
  heldBlobs: number;
  updatedAt: string | undefined;
}

export function emptyContentTypeState(contentType: ContentType): ContentTypeState {
  return {
    version: 2, contentType, sequence: 0, checkpoint: undefined, delivered: {}, recentIds: [], sinkPositions: {},
    recordsDelivered: 0, blobsDelivered: 0, duplicatesDropped: 0, expiredCount: 0, expired: [],
    lastContentSeen: undefined, lastDeliveryAt: undefined, lastError: undefined, heldBlobs: 0, updatedAt: undefined,
  };
}

/** The sink positions to resume from: those of the most recent commit, whichever content type made it. */
export function latestSinkPositions(states: Iterable<ContentTypeState>): { sequence: number; positions: Record<string, SinkPosition> } {
  let latest: ContentTypeState | undefined;
  for (const state of states) if (!latest || state.sequence > latest.sequence) latest = state;
  return { sequence: latest?.sequence ?? 0, positions: { ...(latest?.sinkPositions ?? {}) } };
}

/**
 * A checkpoint store. `save` is durable when it resolves: a crash afterwards finds this state, a crash during it
 * finds the previous one. The default keeps one file per content type in a directory; another store (a database,
 * a key-value service) only has to keep the same promise per content type.
 */
export interface StateStore {
  loadAll(): Promise<Map<ContentType, ContentTypeState>>;
  save(state: ContentTypeState): Promise<void>;
  close(): Promise<void>;
}
