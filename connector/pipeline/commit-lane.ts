/**
 * The one lane through which every content type writes to the sinks and commits. Sinks are shared (one file
 * holds every content type), so a commit must follow its own sink writes before any other content type
 * writes: then the sink positions stored with every commit agree with every content type's checkpoint, and a
 * restart cuts each sink back to exactly what the checkpoints account for. Listing and fetching run outside
 * the lane; only "write batch, wait for every ack, commit" is serialised, which is the backpressure the sinks
 * need anyway. The store applies each commit in one transaction.
 */
import { ConnectorError } from '../core/errors.ts';
import type { Sink } from '../sinks/sink.ts';
import type { SinkBatch, SinkPosition } from '../core/records.ts';
import type { StateStore } from '../state/store.ts';
import type { Commit } from '../core/commit.ts';
import { fanOut, type FanOutOptions, type SinkSetAside } from './sink-fanout.ts';

export class CommitLane {
  readonly #store: StateStore;
  readonly #sinks: readonly Sink[];
  readonly #options: FanOutOptions;
  readonly #positions: Record<string, SinkPosition>;
  #tail: Promise<unknown> = Promise.resolve();
  #failure: unknown;

  /** `options`: the fan-out's (the stop ends sink retries: the batch is not committed, a restart delivers it again). */
  constructor(store: StateStore, sinks: readonly Sink[], positions: Record<string, SinkPosition>, options: FanOutOptions) {
    this.#store = store;
    this.#sinks = sinks;
    this.#positions = { ...positions };
    this.#options = options;
  }

  /**
   * Commits every sink's position right after `open` when the store has none for it (a sink new to this state),
   * before anything is written: without it a crash inside the very first batch would leave that batch's bytes
   * in front of its re-delivery.
   */
  async recordStartingPositions(at: string): Promise<void> {
    const fresh: Record<string, SinkPosition> = {};
    for (const sink of this.#sinks) {
      const position = sink.position?.();
      if (position !== undefined && this.#positions[sink.name] === undefined) fresh[sink.name] = position;
    }
    if (Object.keys(fresh).length === 0) return;
    Object.assign(this.#positions, fresh);
    await this.commit(undefined, () => ({ at }));
  }

  /**
   * Brings every sink that can cut back to the position last committed in the store, after commits stopped reaching
   * it (a fleet worker's session was lost: what was written since will be delivered again). Queued behind whatever
   * is still in the lane; the caller has stopped every unit first.
   */
  rewind(): Promise<void> {
    const run = async () => {
      const committed = await this.#store.sinkPositions();
      for (const sink of this.#sinks) {
        if (sink.rewind) await sink.rewind(committed[sink.name]);
        if (committed[sink.name] === undefined) delete this.#positions[sink.name];
        else this.#positions[sink.name] = committed[sink.name]!;
      }
    };
    return this.#queued(run);
  }

  /** The error that made the lane refuse further commits (a failed commit, or a sink that refuses for good). */
  get failure(): unknown {
    return this.#failure;
  }

  /**
   * Writes `batch` (if any) to every sink; once all acknowledged, `build` makes the commit (it runs only then,
   * so it may move trackers forward) and `store` (a tenant's view; by default the lane's own) applies it with the
   * new sink positions. A commit refused because this worker no longer holds the unit (STATE_FENCED) ends that
   * unit only: its batch is in the sinks but not committed, and the unit's new holder delivers it again.
   */
  commit(batch: SinkBatch | undefined, build: () => Omit<Commit, 'sinkPositions'>, store: StateStore = this.#store): Promise<void> {
    const run = async () => {
      if (this.#failure !== undefined) throw this.#failure;
      const { positions: written, setAside } = batch && batch.records.length > 0 ? await this.#write(batch) : { positions: {}, setAside: [] };
      const commit = withSinksSetAside(build(), setAside, batch);
      const positions = { ...this.#positions, ...written };
      try {
        await store.commit({ ...commit, sinkPositions: positions });
      } catch (error) {
        if (error instanceof ConnectorError && error.code === 'STATE_FENCED') {
          Object.assign(this.#positions, written);
          throw error;
        }
        // The sinks are now ahead of the store; committing anything else would pair new positions with old checkpoints.
        this.#failure = error instanceof ConnectorError ? error : new ConnectorError('STATE_WRITE_FAILED', `cannot commit the state${commit.contentType ? ` of ${commit.contentType}` : ''} to ${store.location}: ${(error as Error).message}`, { fix: 'check disk space and permissions of the --state directory', cause: error });
        throw this.#failure;
      }
      Object.assign(this.#positions, written);
      this.#options.observer?.committed?.();
    };
    return this.#queued(run);
  }

  /** Runs `run` after everything queued before it; a failure is the caller's, never the next one's. */
  #queued(run: () => Promise<void>): Promise<void> {
    const result = this.#tail.then(run);
    this.#tail = result.catch(() => {});
    return result;
  }

  async #write(batch: SinkBatch): ReturnType<typeof fanOut> {
    try {
      return await fanOut(this.#sinks, batch, this.#options);
    } catch (error) {
      if (!this.#options.stopSignal?.aborted) this.#failure = error;
      throw error;
    }
  }
}

/**
 * The commit with the records a sink set aside from its batch, kept in the dead letters like elements of a blob that
 * are not records: the "content id" names the sink, the index is the record's place in the batch, the reason its Id.
 */
function withSinksSetAside(commit: Omit<Commit, 'sinkPositions'>, setAside: readonly SinkSetAside[], batch: SinkBatch | undefined): Omit<Commit, 'sinkPositions'> {
  if (setAside.length === 0 || batch === undefined) return commit;
  return {
    ...commit,
    setAside: [...commit.setAside ?? [], ...setAside.map(({ sink, record, reason }) => ({
      contentId: `sink ${sink}`, index: batch.records.indexOf(record), reason: `record ${record.id ?? '(no Id)'} not taken by ${sink}: ${reason}`, bytes: record.bytes,
    }))],
  };
}
