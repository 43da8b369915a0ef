/**
 * Every error a user can meet is a ConnectorError: a stable `code` (the Microsoft code such as AF20022 or
 * AADSTS7000215 when there is one, otherwise one of ours such as CONFIG_INVALID), a one-line message that says
 * what it means, and a `fix` that says which setup step or flag repairs it. The CLI turns these into one line
 * and an exit code in one place; nothing else prints errors.
 */
export class ConnectorError extends Error {
  readonly code: string;
  readonly fix: string | undefined;
  /** Whether repeating the same call later may succeed (throttling, 5xx, resets). */
  readonly retryable: boolean;
  /**
   * The service's quota is spent (AF429, Graph's 429): the call waits and is repeated until it succeeds or the run
   * stops. It never counts as a failed attempt, and never fails a blob, a unit or a run.
   */
  readonly throttled: boolean;

  constructor(code: string, message: string, options: { fix?: string; retryable?: boolean; throttled?: boolean; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.fix = options.fix;
    this.throttled = options.throttled ?? false;
    this.retryable = this.throttled || (options.retryable ?? false);
  }

  /** The single line the CLI prints: `CODE: message. Fix: ...` */
  toLine(): string {
    const sentence = /[.!?)]$/.test(this.message) ? this.message : `${this.message}.`;
    return this.fix ? `${this.code}: ${sentence} Fix: ${this.fix}` : `${this.code}: ${sentence}`;
  }
}

export class ConfigError extends ConnectorError {
  readonly field: string;
  constructor(field: string, message: string, fix?: string) {
    super('CONFIG_INVALID', `${field}: ${message}`, fix === undefined ? {} : { fix });
    this.field = field;
  }
}

/** A sink refused for good: its target is taken, holds what it must not overwrite, or refuses every batch. */
export class SinkError extends ConnectorError {}

export function toConnectorError(error: unknown): ConnectorError {
  if (error instanceof ConnectorError) return error;
  return new ConnectorError('ERROR', String((error as Error)?.message ?? error), { cause: error });
}
