/**
 * A content blob's body split into its records, each kept as the bytes Microsoft sent ("bytes pass through":
 * re-serializing a parsed record reorders integer-like keys, rewrites `1.0` and escapes, and rounds integers
 * above 2^53, which changes evidence).
 *
 * The body is validated in full, exactly as strictly as JSON.parse(body.toString()): no trailing commas or
 * comments, no leading zeros, no raw control characters in strings, nothing after the value. Bytes that are
 * not valid UTF-8 pass, as they do there (decoded as U+FFFD); the sinks write them on unchanged. A leading
 * UTF-8 BOM is skipped. The top level must be an array, the documented shape. It runs on every byte
 * the connector receives, so it is one tight loop over the bytes that allocates nothing per byte or per token
 * (only the records themselves), with an explicit stack, so any depth JSON.parse accepts is accepted; it is
 * faster than JSON.parse(body.toString()), which it replaces.
 *
 * Each record's `bytes` is a view into the body covering exactly its `{...}`: no copy (the body stays in
 * memory while any of its records does, as it would as a whole batch anyway). The one exception is
 * for the sinks that write one record per line (NDJSON): a record whose whitespace between tokens holds a line
 * break (\n or \r, i.e. a pretty-printed body) is compacted into a new buffer, all its whitespace between
 * tokens removed; nothing inside a string changes, and JSON.parse reads the same value from it. Compact bodies,
 * what the service sends, are never copied.
 *
 * `id` and `creationTime` are the string values of the record's own `Id` and `CreationTime` keys (keys of
 * nested objects do not count), escapes decoded; a repeated key counts as JSON.parse counts it (the last one
 * wins); undefined when absent or not a string.
 *
 * An element of the array that is not an object with a string `Id` (`null`, `5`, `"text"`, `[1,2]`, `{}`) is no
 * audit record: it is returned apart, as its bytes, never among the records, and the rest of the body is
 * unaffected.
 */
import type { RawRecord } from '../../core/records.ts';
import { ActivityApiError, invalidBodyCode } from './af-errors.ts';
import { compacted, endsEarly, invalid, JsonSyntaxError, literalEnd, literals, numberEnd, stringEnd, stringEscaped } from '../../core/json-scanner.ts';

/** An element of a content body that is not an audit record, as its exact bytes, and why. */
export interface RejectedElement {
  /** Its position in the body's array, from 0. */
  readonly index: number;
  readonly reason: 'not a JSON object' | 'no string Id';
  readonly bytes: Buffer;
}

export interface ContentBody {
  readonly records: RawRecord[];
  readonly rejected: RejectedElement[];
}

// The walk's bytes are its own constants: V8 folds a module's own const into the loop, not an imported one
// (imported, a pretty-printed body measured about 13 % slower).
const tab = 0x09;
const lf = 0x0a;
const cr = 0x0d;
const space = 0x20;
const quote = 0x22;
const comma = 0x2c;
const minus = 0x2d;
const zero = 0x30;
const nine = 0x39;
const colon = 0x3a;
const openArray = 0x5b;
const closeArray = 0x5d;
const openObject = 0x7b;
const closeObject = 0x7d;

/** What may come next (whitespace aside). */
const expectValue = 0;
const expectValueOrEnd = 1; // just after `[`
const expectKeyOrEnd = 2; // just after `{`
const expectKey = 3;
const expectColon = 4;
const expectNext = 5; // after a value: `,`, the container's end, or (at the top) the end of the body

const inArray = 1;
const inObject = 2;

/** Which of a record's own keys the value about to be read belongs to. */
const otherKey = 0;
const idKey = 1;
const creationTimeKey = 2;

const creationTimeName = Buffer.from('CreationTime');

/** Which record key the string token from `open` (its opening quote) to `close` (its closing quote) is. */
function recordKey(body: Buffer, open: number, close: number, escaped: boolean): number {
  if (escaped) {
    const name = JSON.parse(body.toString('utf8', open, close + 1)) as string;
    return name === 'Id' ? idKey : name === 'CreationTime' ? creationTimeKey : otherKey;
  }
  const length = close - open - 1;
  if (length === 2) return body[open + 1] === 0x49 && body[open + 2] === 0x64 ? idKey : otherKey;
  if (length === 12) return body.compare(creationTimeName, 0, 12, open + 1, close) === 0 ? creationTimeKey : otherKey;
  return otherKey;
}

/** The string value whose token spans `open`..`close` (the quotes), or undefined for `open` -1. */
function stringValue(body: Buffer, open: number, close: number, escaped: boolean): string | undefined {
  if (open < 0) return undefined;
  return escaped ? JSON.parse(body.toString('utf8', open, close + 1)) as string : body.toString('utf8', open + 1, close);
}

function rawRecord(body: Buffer, start: number, end: number, lineBreak: boolean, idOpen: number, idClose: number, idEscaped: boolean, timeOpen: number, timeClose: number, timeEscaped: boolean): RawRecord {
  const bytes = body.subarray(start, end);
  return {
    id: stringValue(body, idOpen, idClose, idEscaped),
    creationTime: stringValue(body, timeOpen, timeClose, timeEscaped),
    bytes: lineBreak ? compacted(bytes) : bytes,
  };
}

/**
 * The records of a content blob's body (the whole HTTP body), in order. Throws ActivityApiError
 * INVALID_BODY (retryable: a cut or garbled body is fetched again) naming what was wrong and at which byte,
 * never the content.
 */
export function contentRecords(buffer: Buffer): ContentBody {
  try {
    return splitRecords(buffer);
  } catch (error) {
    if (!(error instanceof JsonSyntaxError)) throw error;
    throw new ActivityApiError(invalidBodyCode, `the content answer was not ${error.cutShort ? 'complete' : 'valid'} JSON: ${error.message}`, 200, { retryable: true });
  }
}

function splitRecords(buffer: Buffer): ContentBody {
  // Reads through a plain Uint8Array view measured faster than through the Buffer.
  const body = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.length);
  const n = body.length;
  let i = n >= 3 && body[0] === 0xef && body[1] === 0xbb && body[2] === 0xbf ? 3 : 0;
  const records: RawRecord[] = [];
  const rejected: RejectedElement[] = [];
  let elements = 0; // of the top-level array, begun so far
  let otherStart = -1; // where the element being read began, when it is not an object
  let containers = new Uint8Array(64); // containers[depth]: inArray or inObject; depth 0 is the top level
  let depth = 0;
  let state = expectValue;
  let shapeProblem: string | undefined;
  // The top level is an array and every element so far was an object: records are being collected.
  let collecting = false;
  // The record being read.
  let recordStart = 0;
  let lineBreak = false;
  let key = otherKey;
  let idOpen = -1;
  let idClose = 0;
  let idEscaped = false;
  let timeOpen = -1;
  let timeClose = 0;
  let timeEscaped = false;

  for (;;) {
    let b = 0;
    while (i < n) {
      b = body[i]!;
      if (b > space) break;
      if (b === space || b === tab) i++;
      else if (b === lf || b === cr) {
        if (depth > 1) lineBreak = true;
        i++;
      } else break;
    }
    if (i >= n) {
      if (state === expectNext && depth === 0) break;
      endsEarly(n);
    }

    if (state === expectNext) {
      if (depth === 0) invalid('data after the end of the JSON value', i, n);
      const container = containers[depth];
      if (b === comma) {
        i++;
        state = container === inArray ? expectValue : expectKey;
      } else if (b === closeObject && container === inObject) {
        i++;
        depth--;
        if (depth === 1 && collecting) {
          if (idOpen >= 0) records.push(rawRecord(buffer, recordStart, i, lineBreak, idOpen, idClose, idEscaped, timeOpen, timeClose, timeEscaped));
          else rejected.push({ index: elements - 1, reason: 'no string Id', bytes: buffer.subarray(recordStart, i) });
        }
      } else if (b === closeArray && container === inArray) {
        i++;
        depth--;
        if (depth === 1 && otherStart >= 0) otherStart = rejectElement(buffer, otherStart, i, elements - 1, rejected);
      } else {
        invalid(container === inArray ? 'an unexpected character (expected , or ])' : 'an unexpected character (expected , or })', i, n);
      }
      continue;
    }

    if (state === expectKey || state === expectKeyOrEnd) {
      if (b === quote) {
        const close = stringEnd(body, i + 1, n);
        if (depth === 2 && collecting) key = recordKey(buffer, i, close, stringEscaped);
        i = close + 1;
        state = expectColon;
      } else if (b === closeObject && state === expectKeyOrEnd) {
        state = expectNext; // an empty object: the close is handled there, as for any object
      } else {
        invalid('an unexpected character (expected a key)', i, n);
      }
      continue;
    }

    if (state === expectColon) {
      if (b !== colon) invalid('an unexpected character (expected :)', i, n);
      i++;
      state = expectValue;
      continue;
    }

    // A value, or the end of an empty array.
    if (b === closeArray && state === expectValueOrEnd) {
      state = expectNext; // an empty array: the close is handled there, as for any array
      continue;
    }
    if (depth < 2 && shapeProblem === undefined) {
      if (depth === 0) {
        if (b === openArray) collecting = true;
        else shapeProblem = `the top level is not an array (byte ${i})`;
      } else {
        elements++;
        if (b === openObject) {
          recordStart = i;
          lineBreak = false;
          idOpen = -1;
          timeOpen = -1;
        } else {
          otherStart = i;
        }
      }
    }
    state = expectNext;
    if (b === quote) {
      const close = stringEnd(body, i + 1, n);
      if (key !== otherKey) {
        if (key === idKey) {
          idOpen = i;
          idClose = close;
          idEscaped = stringEscaped;
        } else {
          timeOpen = i;
          timeClose = close;
          timeEscaped = stringEscaped;
        }
        key = otherKey;
      }
      i = close + 1;
      if (depth === 1 && otherStart >= 0) otherStart = rejectElement(buffer, otherStart, i, elements - 1, rejected);
      continue;
    }
    if (key !== otherKey) {
      // Not a string: the key counts as absent, also over an earlier string value of the same key.
      if (key === idKey) idOpen = -1;
      else timeOpen = -1;
      key = otherKey;
    }
    if (b === openObject || b === openArray) {
      depth++;
      if (depth === containers.length) {
        const deeper = new Uint8Array(containers.length * 2);
        deeper.set(containers);
        containers = deeper;
      }
      containers[depth] = b === openObject ? inObject : inArray;
      state = b === openObject ? expectKeyOrEnd : expectValueOrEnd;
      i++;
    } else {
      if (b === minus || (b >= zero && b <= nine)) {
        i = numberEnd(body, i, n);
      } else {
        const word = literals[b];
        if (word === undefined) invalid('an unexpected character (expected a value)', i, n);
        i = literalEnd(body, i, n, word);
      }
      if (depth === 1 && otherStart >= 0) otherStart = rejectElement(buffer, otherStart, i, elements - 1, rejected);
    }
  }
  if (shapeProblem !== undefined) {
    throw new ActivityApiError(invalidBodyCode, `the content answer did not have the documented shape, an array of records: ${shapeProblem}`, 200, { retryable: true });
  }
  return { records, rejected };
}

/** Sets aside a top-level element that is not an object; returns the new `otherStart` (none). */
function rejectElement(buffer: Buffer, start: number, end: number, index: number, rejected: RejectedElement[]): number {
  rejected.push({ index, reason: 'not a JSON object', bytes: buffer.subarray(start, end) });
  return -1;
}
