/**
 * Where units deliver to: the sinks, opened at the positions last committed and checked before their first batch,
 * and the one commit lane they share. It holds the run's summary, and ends every unit (its `signal`) when the run
 * is stopped or the lane fails (a sink refusing for good, a failed commit).
 */
import { ConnectorError, SinkError, toConnectorError } from '../core/errors.ts';
import type { CollectedType } from '../../contract/content-types.ts';
import { noCounts, type RunSummary } from '../core/counts.ts';
import type { Logger } from '../observe/log.ts';
import type { RunObserver } from '../observe/telemetry.ts';
import type { Sink } from '../sinks/sink.ts';
import type { StateStore } from '../state/store.ts';
import { CommitLane } from './commit-lane.ts';
import type { SinkRetryPolicy } from './sink-fanout.ts';

export interface DeliveryOptions {
  /** Opened (and locked) by the caller; closed by the caller. Holds the sink positions. */
  readonly store: StateStore;
  readonly sinks: readonly Sink[];
  readonly logger: Logger;
  readonly abortSignal?: AbortSignal | undefined;
  readonly now?: (() => Date) | undefined;
  readonly sinkRetry?: SinkRetryPolicy;
  /** Sink batch times and refusals, and commits (metrics, the stall watch). */
  readonly observer?: RunObserver | undefined;
}

/** Errors no retry can fix: a `--once` run stops on them instead of reporting and carrying on. */
const fatalCodes = new Set(['AF10001', 'AF20010', 'AUDIT_LOG_DISABLED', 'UNAUTHORIZED', 'AF20020', 'AF20023', 'GRAPH_FORBIDDEN', 'GRAPH_UNAUTHORIZED']);

/** Opens every sink (each checked before its first batch) and the lane; a sink new to the state has its starting position committed. */
export async function openDelivery(options: DeliveryOptions) {
  const { store, logger, abortSignal, observer } = options;
  const opened: Sink[] = [];
  let lane: CommitLane;
  try {
    const positions = await store.sinkPositions();
    for (const sink of options.sinks) {
      await sink.open?.(positions[sink.name], abortSignal ? { abortSignal } : {});
      opened.push(sink);
      await checkSink(sink, logger, abortSignal);
    }
    lane = new CommitLane(store, options.sinks, positions, { logger, stopSignal: abortSignal, observer, retry: options.sinkRetry });
    await lane.recordStartingPositions((options.now?.() ?? new Date()).toISOString());
  } catch (error) {
    await closeAll(opened);
    throw error;
  }
  const halt = new AbortController();
  const summary: RunSummary = { ...noCounts(), errors: [] };
  let fatal: ConnectorError | undefined;
  return {
    lane,
    /** Ends when every unit must end: the run's stop, or a lane failure. */
    signal: abortSignal ? AbortSignal.any([abortSignal, halt.signal]) : halt.signal,
    /** The summary so far, shared by every unit. */
    summary,
    /** The first error no retry can fix (consent, auditing off, a subscription disabled), when one happened. */
    get fatal() {
      return fatal;
    },
    /** A unit's error, in the run's summary. */
    failed(unit: { readonly tenant?: string | undefined; readonly contentType: CollectedType }, error: ConnectorError, isFatal = fatalCodes.has(error.code)): void {
      summary.errors.push({ ...(unit.tenant === undefined ? {} : { tenant: unit.tenant }), contentType: unit.contentType, code: error.code, message: error.toLine() });
      if (isFatal) fatal ??= error;
    },
    /** Whether the lane failed; then every unit is ended. */
    halted(): boolean {
      if (lane.failure === undefined) return false;
      halt.abort(lane.failure);
      return true;
    },
    /** Cuts the sinks back to the positions last committed (after a lost state session; every unit stopped). */
    rewindSinks: () => lane.rewind(),
    /** The summary of a run that ended; throws the lane's failure (a sink refusing for good, a failed commit). */
    finish(): RunSummary {
      if (lane.failure !== undefined) throw lane.failure;
      return summary;
    },
    close: () => closeAll(opened),
  };
}

export type Delivery = Awaited<ReturnType<typeof openDelivery>>;

async function closeAll(sinks: readonly Sink[]): Promise<void> {
  for (const sink of sinks) await sink.close().catch(() => {});
}

/**
 * Tries a sink before the first batch: what can never work (a refused token, a missing privilege, an untrusted
 * certificate) stops the run at once with the fix; what may pass (a receiver restarting) is logged and left to the
 * batches' retries.
 */
async function checkSink(sink: Sink, logger: Logger, abortSignal: AbortSignal | undefined): Promise<void> {
  if (!sink.check) return;
  try {
    const verified = await sink.check(abortSignal ? { abortSignal } : {});
    logger.info({ component: 'sink', sink: sink.name, verified }, 'sink checked');
  } catch (error) {
    if (abortSignal?.aborted) throw error;
    const failure = toConnectorError(error);
    if (!failure.retryable) throw new SinkError(failure.code, `sink ${sink.name}: ${failure.message}`, { ...(failure.fix ? { fix: failure.fix } : {}), cause: failure });
    logger.warn({ component: 'sink', sink: sink.name, code: failure.code, reason: failure.toLine() }, 'sink check failed; the first batch will try again');
  }
}
