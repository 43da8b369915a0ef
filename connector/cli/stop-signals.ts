import type { Logger } from '../observe/log.ts';
import { exitCodes } from './exit-codes.ts';

/**
 * The first SIGINT/SIGTERM aborts the controller (a graceful stop); a second one exits at once with 130.
 * `dispose` removes the handlers.
 */
export function stopOnSignals(logger: Logger): { controller: AbortController; dispose: () => void } {
  const controller = new AbortController();
  let signals = 0;
  const stop = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) {
      process.stderr.write(`error: stopped by a second ${signal} before the graceful stop finished; the state saved last is kept\n`);
      process.exit(exitCodes.interrupted);
    }
    logger.info({ signal }, 'stopping: finishing the batch in flight and saving state (send it again to stop at once)');
    controller.abort(new Error(`stopped by ${signal}`));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  return { controller, dispose: () => {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  } };
}
