import { pino, type Logger, type DestinationStream } from 'pino';
import { redactSecrets } from './secret-values.ts';

export type { Logger };

/** Keys whose values are secrets wherever they appear in a log object. */
export const secretKeys = [
  'clientSecret', 'client_secret', 'secret', 'password', 'token', 'accessToken', 'access_token',
  'authorization', 'Authorization', 'client_assertion', 'privateKey', 'authId', 'apiKey',
] as const;

const redactPaths = secretKeys.flatMap((key) => [key, `*.${key}`, `*.*.${key}`]);

/**
 * Structured JSON logs on stderr (never stdout: stdout may be the sink), secrets redacted by key, and every known
 * secret value (secret-values.ts) cut out of each line whatever carries it.
 */
export function createLogger(options: { level?: string; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      level: options.level ?? process.env['O365_LOG_LEVEL'] ?? 'info',
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: redactPaths, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    redactingStream(options.destination ?? pino.destination({ fd: 2, sync: true })),
  );
}

function redactingStream(destination: DestinationStream): DestinationStream {
  return { write: (line: string) => destination.write(redactSecrets(line)) };
}
