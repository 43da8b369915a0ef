/**
 * The one lane through which every content type writes to the sinks and commits its state. Sinks are shared
 * (one file holds every content type), so a commit must follow its own sink writes before any other content
 * type writes: then the state file with the highest sequence always holds sink positions that agree with every
 * content type's checkpoint, and a restart cuts each sink back to exactly what the checkpoints account for.
 * Fetching and listing run concurrently outside the lane; only "write batch, wait for every ack, save" is
 * serialised, which is the backpressure the sinks need anyway.
 */
import { ConnectorError } from '../errors.ts';
import type { Sink, SinkBatch, SinkPosition } from '../sinks/sink.ts';
import type { Logger } from '../status/log.ts';
import type { ContentTypeState, StateStore } from '../state/state.ts';
import { fanOut, type SinkRetryPolicy } from './sink-fanout.ts';

export class CommitLane {
  readonly #store: StateStore;
  readonly #sinks: readonly Sink[];
  readonly #options: { logger: Logger; stopSignal?: AbortSignal | undefined; retry?: SinkRetryPolicy };
  readonly #positions: Record<string, SinkPosition>;
  #sequence: number;
  #tail: Promise<unknown> = Promise.resolve();
  #failure: unknown;

  constructor(store: StateStore, sinks: readonly Sink[], resume: { sequence: number; positions: Record<string, SinkPosition> }, options: { logger: Logger; stopSignal?: AbortSignal | undefined; retry?: SinkRetryPolicy }) {
    this.#store = store;
    this.#sinks = sinks;
    this.#sequence = resume.sequence;
    this.#positions = { ...resume.positions };
    this.#options = options;
  }

  /** Sink positions not yet in any state file (a sink new to this directory): recorded before the first write. */
  needsStartingPositions(): boolean {
    return this.#sinks.some((sink) => sink.position !== undefined && this.#positions[sink.name] === undefined);
  }

  /** Commits `state` unchanged together with every sink's current position (before anything is written). */
  recordStartingPositions(state: ContentTypeState): Promise<void> {
    for (const sink of this.#sinks) {
      const position = sink.position?.();
      if (position !== undefined && this.#positions[sink.name] === undefined) this.#positions[sink.name] = position;
    }
    return this.commit(state, undefined, () => {});
  }

  /** The error that made the lane refuse further commits (a state write or a sink that refuses for good). */
  get failure(): unknown {
    return this.#failure;
  }

  /**
   * Writes `batch` (if any) to every sink, then, once all acknowledged, lets `apply` move the state forward and
   * saves it with the new sink positions. Nothing of `apply` happens if a sink never acknowledges.
   */
  commit(state: ContentTypeState, batch: SinkBatch | undefined, apply: () => void): Promise<void> {
    const run = async () => {
      if (this.#failure !== undefined) throw this.#failure;
      const positions = batch && batch.records.length > 0 ? await this.#write(batch) : {};
      apply();
      this.#sequence += 1;
      state.sequence = this.#sequence;
      state.sinkPositions = { ...this.#positions, ...positions };
      try {
        await this.#store.save(state);
      } catch (error) {
        // Memory is now ahead of disk; committing anything else would pair new positions with old checkpoints.
        this.#failure = new ConnectorError('STATE_WRITE_FAILED', `cannot save the state of ${state.contentType}: ${(error as Error).message}`, { fix: 'check disk space and permissions of the --state directory', cause: error });
        throw this.#failure;
      }
      Object.assign(this.#positions, positions);
    };
    const result = this.#tail.then(run);
    this.#tail = result.catch(() => {});
    return result;
  }

  async #write(batch: SinkBatch): Promise<Record<string, SinkPosition>> {
    try {
      return await fanOut(this.#sinks, batch, this.#options);
    } catch (error) {
      if (!this.#options.stopSignal?.aborted) this.#failure = error;
      throw error;
    }
  }
}
