import { pino, type Logger, type DestinationStream } from 'pino';
import { logLineForPeople } from './log-lines.ts';
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
 * secret value (secret-values.ts) cut out of each line whatever carries it. On a terminal (`forPeople`, by default
 * whether stderr is a TTY) each line is written for people instead (log-lines.ts), with the same redaction.
 */
export function createLogger(options: { level?: string; destination?: DestinationStream; forPeople?: boolean } = {}): Logger {
  const forPeople = options.forPeople ?? (options.destination === undefined && process.stderr.isTTY === true);
  return pino(
    {
      level: options.level ?? process.env['O365_LOG_LEVEL'] ?? 'info',
      base: undefined,
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: redactPaths, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    redactingStream(options.destination ?? pino.destination({ fd: 2, sync: true }), forPeople),
  );
}

/** Lines kept at the bottom of a terminal (progress.ts): cleared before each log line and drawn again after it. */
let bottomLines: { clear(): void; draw(): void } | undefined;

export function keepBelowLogs(lines: { clear(): void; draw(): void } | undefined): void {
  bottomLines = lines;
}

function redactingStream(destination: DestinationStream, forPeople: boolean): DestinationStream {
  return {
    write: (line: string) => {
      bottomLines?.clear();
      destination.write(redactSecrets(forPeople ? logLineForPeople(line) : line));
      bottomLines?.draw();
    },
  };
}

/** The logger of a command: at its --log-level (else O365_LOG_LEVEL, else info). */
export function loggerFor(options: { readonly logLevel?: string | undefined }): Logger {
  return createLogger(options.logLevel ? { level: options.logLevel } : {});
}
