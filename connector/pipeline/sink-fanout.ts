/**
 * Fan-out with end-to-end acknowledgement: a batch goes to every sink at once; each sink that fails is retried
 * alone, with exponential backoff and jitter, until it acknowledges. Nothing is dropped and nothing is
 * buffered meanwhile: the caller awaits, so a failing sink holds the checkpoint and stops collection
 * (backpressure). A graceful stop ends the retries (the batch is not committed; a restart delivers it again).
 * A sink that keeps refusing for a reason retrying cannot fix (bad token, bad index) ends the run instead.
 */
import { ConnectorError, SinkError } from '../core/errors.ts';
import type { Sink } from '../sinks/sink.ts';
import type { RawRecord, SinkBatch, SinkPosition } from '../core/records.ts';
import type { Logger } from '../observe/log.ts';
import type { RunObserver } from '../observe/telemetry.ts';
import { retry } from '../http/retry.ts';

export interface SinkRetryPolicy {
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /** Attempts after which an error the sink calls not retryable ends the run. */
  readonly maxNonRetryableAttempts: number;
}

export const defaultSinkRetry: SinkRetryPolicy = { baseDelayMs: 500, maxDelayMs: 30_000, maxNonRetryableAttempts: 5 };

export interface FanOutOptions {
  readonly logger: Logger;
  /** A graceful stop: sink retries end. */
  readonly stopSignal?: AbortSignal | undefined;
  readonly retry?: SinkRetryPolicy | undefined;
  /** Told of each sink's acknowledgement of a batch (with how long it took, retries included), each refusal, each commit. */
  readonly observer?: Pick<RunObserver, 'sinkBatch' | 'sinkFailed' | 'committed'> | undefined;
}

/** A record a sink set aside from a batch it acknowledged, with its reason. */
export interface SinkSetAside {
  readonly sink: string;
  readonly record: RawRecord;
  readonly reason: string;
}

export async function writeUntilAcknowledged(sink: Sink, batch: SinkBatch, options: FanOutOptions, setAside?: Map<RawRecord, string>): Promise<SinkPosition | undefined> {
  const { baseDelayMs, maxDelayMs, maxNonRetryableAttempts } = options.retry ?? defaultSinkRetry;
  let refusals = 0;
  const refused = (error: unknown): error is ConnectorError => error instanceof ConnectorError && !error.retryable;
  try {
    // The stop signal only ends the waits: a batch in flight is finished, not abandoned half-written.
    // Kept across tries: a try that resumes after the calls already acknowledged does not see their records again.
    const write = () => sink.write(batch, setAside ? { setAside: (record, reason) => setAside.set(record, reason) } : {});
    return await retry(write, {
      policy: { maxAttempts: Number.POSITIVE_INFINITY, baseDelayMs, maxDelayMs, jitter: 'equal' },
      // Anything may pass on a later try, except the same refusal `maxNonRetryableAttempts` times.
      judge: (error) => ({ retry: !refused(error) || (refusals += 1) < maxNonRetryableAttempts }),
      signal: options.stopSignal,
      onRetry: ({ error, calls, delayMs }) => {
        const code = error instanceof ConnectorError ? error.code : ((error as NodeJS.ErrnoException).code ?? 'SINK_ERROR');
        const line = error instanceof ConnectorError ? error.toLine() : String((error as Error).message ?? error);
        options.logger.warn({ component: 'pipeline', sink: sink.name, attempt: calls, delayMs, code, reason: line }, 'sink did not acknowledge the batch; holding the checkpoint and sending it again');
        options.observer?.sinkFailed?.(sink.name, line);
      },
    });
  } catch (error) {
    if (!refused(error) || refusals < maxNonRetryableAttempts) throw error;
    throw new SinkError(error.code, `sink ${sink.name} refused the same batch ${refusals} times: ${error.message}`, { ...(error.fix ? { fix: error.fix } : {}), cause: error });
  }
}

/** Writes one batch to every sink; resolves once all of them have acknowledged it, with their new positions and what they set aside. */
export async function fanOut(sinks: readonly Sink[], batch: SinkBatch, options: FanOutOptions): Promise<{ positions: Record<string, SinkPosition>; setAside: SinkSetAside[] }> {
  const acknowledged = await Promise.all(sinks.map(async (sink) => {
    const started = performance.now();
    const aside = new Map<RawRecord, string>();
    const position = await writeUntilAcknowledged(sink, batch, options, aside);
    options.observer?.sinkBatch(sink.name, (performance.now() - started) / 1000);
    return { sink: sink.name, position, aside };
  }));
  const positions: Record<string, SinkPosition> = {};
  for (const { sink, position } of acknowledged) if (position !== undefined) positions[sink] = position;
  return { positions, setAside: acknowledged.flatMap(({ sink, aside }) => [...aside].map(([record, reason]) => ({ sink, record, reason }))) };
}
