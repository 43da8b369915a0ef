/**
 * How the Logs Ingestion API answers a call, read into accepted (2xx, `204` as documented), worth repeating (`429`
 * throttling, `503` and other server errors, honouring Retry-After; `401`, once the token is renewed), or refused for
 * good with the fix in one line: `403` (the identity lacks Monitoring Metrics Publisher on the rule), `404` (no such
 * rule, or no such stream in it), `413` (a call over the size limit), `400` (a body the rule cannot read).
 */
import { SinkError } from '../../core/errors.ts';
import type { HttpAnswer } from '../http/batch-sender.ts';

/** A refusal of the Logs Ingestion API; `retryAfterMs` when the service asked for a pause. */
export class SentinelError extends SinkError {
  readonly retryAfterMs: number | undefined;

  constructor(code: string, message: string, options: { fix?: string; retryable?: boolean; throttled?: boolean; retryAfterMs?: number | undefined } = {}) {
    super(code, message, options);
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** What the call named: for the messages. */
export interface IngestionTarget {
  readonly host: string;
  readonly rule: string;
  readonly stream: string;
  readonly audience: string;
}

/** The service's `{"error":{"code","message"}}` in a few words (or the start of whatever it sent). */
function detailOf(text: string): string {
  try {
    const error = (JSON.parse(text) as { error?: { code?: unknown; message?: unknown } }).error;
    const parts = [error?.code, error?.message].filter((part): part is string => typeof part === 'string' && part !== '');
    if (parts.length > 0) return parts.join(': ').replace(/\s+/g, ' ').slice(0, 300);
  } catch {
    // not JSON: the text itself
  }
  return text.replace(/\s+/g, ' ').trim().slice(0, 200);
}

/** Undefined when the call was accepted, else the error (its `retryable`/`throttled` tell the retry loop what to do). */
export function judgeIngestion(target: IngestionTarget, answer: HttpAnswer, retryAfterMs: number | undefined, bodyBytes: number): SentinelError | undefined {
  const { status } = answer;
  if (status >= 200 && status < 300) return undefined;
  const detail = detailOf(answer.text);
  const said = `HTTP ${status}${detail ? `: ${detail}` : ''}`;
  const { host, rule, stream, audience } = target;
  switch (status) {
    case 401:
      return new SentinelError('SENTINEL_UNAUTHORIZED', `the Logs Ingestion API at ${host} refused the connector's token (${said})`, {
        retryable: true, fix: `the token must be for ${audience} from the tenant the rule's subscription trusts: check the outputs' cloud and tenant, and that the endpoint belongs to that cloud`,
      });
    case 403:
      return new SentinelError('SENTINEL_FORBIDDEN', `the connector's identity may not send to data collection rule ${rule}: it lacks the Monitoring Metrics Publisher role on the rule (${said})`, {
        fix: 'run pulumi up with sentinelWorkspace set (it assigns the role), or assign Monitoring Metrics Publisher on the rule to the app\'s service principal; a new assignment can take 30 minutes to apply',
      });
    case 404:
      return new SentinelError('SENTINEL_NOT_FOUND', `${host} knows no data collection rule ${rule} with a stream ${stream} (${said})`, {
        fix: 'write the outputs file again after pulumi up (sentinelEndpoint, sentinelRule, sentinelStream), or correct rule= and stream=: rule is the immutable id (dcr-…), stream is Custom-O365Audit, and the endpoint is the rule\'s own',
      });
    case 413:
      return new SentinelError('SENTINEL_TOO_LARGE', `a call of ${bodyBytes} bytes to rule ${rule} was over the Logs Ingestion API's size limit (${said})`, {
        fix: 'lower maxBytes in the sink spec: a call carries at most 1 MB',
      });
    case 429:
      return new SentinelError('SENTINEL_THROTTLED', `the Logs Ingestion API at ${host} is throttling (${said})`, { throttled: true, retryAfterMs });
    case 400:
      return new SentinelError('SENTINEL_BAD_REQUEST', `the Logs Ingestion API at ${host} refused a call to rule ${rule} stream ${stream} (${said})`, {
        fix: 'the rule\'s stream must declare the columns the connector sends: run pulumi up with this version of the program',
      });
    default:
      if (status === 408 || status >= 500) {
        return new SentinelError(`HTTP${status}`, `the Logs Ingestion API at ${host} answered ${said}`, {
          retryable: true, retryAfterMs, fix: 'none needed if it passes: the checkpoint waits and the batch is sent again',
        });
      }
      return new SentinelError(`HTTP${status}`, `the Logs Ingestion API at ${host} answered ${said}`, {
        fix: 'check that the sink\'s endpoint is a data collection endpoint\'s logs ingestion URL (redirects are not followed)',
      });
  }
}
