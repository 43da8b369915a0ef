/**
 * Fan-out with end-to-end acknowledgement: a batch goes to every sink at once; each sink that fails is retried
 * alone, with exponential backoff and jitter, until it acknowledges. Nothing is dropped and nothing is
 * buffered meanwhile: the caller awaits, so a failing sink holds the checkpoint and stops collection
 * (backpressure). A graceful stop ends the retries (the batch is not committed; a restart delivers it again).
 * A sink that keeps refusing for a reason retrying cannot fix (bad token, bad index) ends the run instead.
 */
import { ConnectorError, SinkError } from '../core/errors.ts';
import type { Sink } from '../sinks/sink.ts';
import type { SinkBatch, SinkPosition } from '../core/records.ts';
import type { Logger } from '../observe/log.ts';

export interface SinkRetryPolicy {
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /** Attempts after which an error the sink calls not retryable ends the run. */
  readonly maxNonRetryableAttempts: number;
}

export const defaultSinkRetry: SinkRetryPolicy = { baseDelayMs: 500, maxDelayMs: 30_000, maxNonRetryableAttempts: 5 };

function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => { clearTimeout(timer); reject(signal!.reason); };
    const timer = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export interface FanOutOptions {
  readonly logger: Logger;
  /** A graceful stop: sink retries end. */
  readonly stopSignal?: AbortSignal | undefined;
  readonly retry?: SinkRetryPolicy;
  /** Each sink's acknowledgement of a batch, with how long it took (retries included). */
  readonly onAcknowledged?: ((sink: string, seconds: number) => void) | undefined;
  /** Each failed attempt of a sink (the batch is sent again). */
  readonly onRefused?: ((sink: string, reason: string) => void) | undefined;
}

export async function writeUntilAcknowledged(sink: Sink, batch: SinkBatch, options: FanOutOptions): Promise<SinkPosition | undefined> {
  const retry = options.retry ?? defaultSinkRetry;
  let refusals = 0;
  for (let attempt = 1; ; attempt += 1) {
    try {
      // The stop signal is not passed: a batch in flight is finished, not abandoned half-written.
      return await sink.write(batch);
    } catch (error) {
      const code = error instanceof ConnectorError ? error.code : ((error as NodeJS.ErrnoException).code ?? 'SINK_ERROR');
      const line = error instanceof ConnectorError ? error.toLine() : String((error as Error).message ?? error);
      if (error instanceof ConnectorError && !error.retryable) {
        refusals += 1;
        if (refusals >= retry.maxNonRetryableAttempts) {
          throw new SinkError(code, `sink ${sink.name} refused the same batch ${refusals} times: ${error.message}`, { ...(error.fix ? { fix: error.fix } : {}), cause: error });
        }
      }
      const ceiling = Math.min(retry.maxDelayMs, retry.baseDelayMs * 2 ** Math.min(attempt - 1, 16));
      const delayMs = Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
      options.logger.warn({ component: 'pipeline', sink: sink.name, attempt, delayMs, code, reason: line }, 'sink did not acknowledge the batch; holding the checkpoint and sending it again');
      options.onRefused?.(sink.name, line);
      await pause(delayMs, options.stopSignal);
    }
  }
}

/** Writes one batch to every sink; resolves with the new positions once all of them have acknowledged it. */
export async function fanOut(sinks: readonly Sink[], batch: SinkBatch, options: FanOutOptions): Promise<Record<string, SinkPosition>> {
  const acknowledged = await Promise.all(sinks.map(async (sink) => {
    const started = performance.now();
    const position = await writeUntilAcknowledged(sink, batch, options);
    options.onAcknowledged?.(sink.name, (performance.now() - started) / 1000);
    return [sink.name, position] as const;
  }));
  const positions: Record<string, SinkPosition> = {};
  for (const [name, position] of acknowledged) if (position !== undefined) positions[name] = position;
  return positions;
}
