/**
 * A Microsoft Graph collection page (`{"@odata.context", "@odata.nextLink"?, "value": [ … ]}`) split into its items,
 * each kept as the bytes Graph sent ("bytes pass through", as content-records.ts does for audit blobs). The page is
 * validated by JSON.parse first (pages are small: 100 items by default, 1,000 at most); a scan then finds the byte
 * range of each element of the top-level `value` array, so that what a sink writes is exactly what Graph served.
 * An item whose bytes hold a line break between tokens (a pretty-printed page) is compacted, nothing inside a string
 * changed, so that line-oriented sinks keep one item per line.
 */
import { GraphApiError } from './graph-errors.ts';

export interface GraphPage {
  /** The page's items, parsed (for the decisions: id, lastModifiedDateTime) and as their exact bytes, in order. */
  readonly items: ReadonlyArray<{ readonly value: unknown; readonly bytes: Buffer }>;
  /** `@odata.nextLink`: the next page, to be followed verbatim; undefined on the last page. */
  readonly nextLink: string | undefined;
}

const quote = 0x22;
const backslash = 0x5c;
const openers = new Set([0x5b, 0x7b]);
const closers = new Set([0x5d, 0x7d]);
const whitespace = new Set([0x20, 0x09, 0x0a, 0x0d]);

export function graphPage(body: Buffer, what: string): GraphPage {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw new GraphApiError('INVALID_BODY', `the ${what} answer was not complete JSON (${body.length} bytes; connection cut mid-body?)`, 200, { retryable: true });
  }
  const value = (parsed as { value?: unknown } | null)?.value;
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || !Array.isArray(value)) {
    throw new GraphApiError('INVALID_BODY', `the ${what} answer was not a Graph collection ({"value": [...]})`, 200, { retryable: true });
  }
  const next = (parsed as Record<string, unknown>)['@odata.nextLink'];
  const ranges = valueElementRanges(body);
  if (ranges.length !== value.length) {
    throw new GraphApiError('INVALID_BODY', `the ${what} answer's items could not be located in its bytes`, 200, { retryable: true });
  }
  return {
    items: ranges.map(([start, end], i) => ({ value: value[i], bytes: compact(body.subarray(start, end)) })),
    nextLink: typeof next === 'string' && next.trim() !== '' ? next.trim() : undefined,
  };
}

/**
 * The [start, end) byte ranges of the elements of the top-level object's `value` array. The body is known to be
 * valid JSON: only strings (and their escapes) and nesting need tracking.
 */
function valueElementRanges(body: Buffer): Array<[number, number]> {
  const ranges: Array<[number, number]> = [];
  let depth = 0;
  let inValue = false;
  let elementStart = -1;
  let lastKey: string | undefined;
  let keyStart = -1;
  let expectingKey = false;
  for (let i = 0; i < body.length; i += 1) {
    const byte = body[i]!;
    if (byte === quote) {
      const start = i;
      for (i += 1; body[i] !== quote; i += 1) if (body[i] === backslash) i += 1;
      if (depth === 1 && expectingKey) {
        keyStart = start;
        lastKey = body.toString('utf8', keyStart + 1, i);
        expectingKey = false;
      }
      if (inValue && depth === 2 && elementStart === -1) elementStart = start;
      continue;
    }
    if (whitespace.has(byte)) continue;
    if (inValue && depth === 2 && elementStart === -1 && byte !== 0x2c && byte !== 0x5d) elementStart = i;
    if (openers.has(byte)) {
      depth += 1;
      if (depth === 1) expectingKey = true;
      if (depth === 2 && byte === 0x5b && lastKey === 'value') inValue = true;
      continue;
    }
    if (closers.has(byte)) {
      if (inValue && depth === 2) {
        if (elementStart !== -1) ranges.push([elementStart, trimEnd(body, i)]);
        inValue = false;
        elementStart = -1;
      }
      depth -= 1;
      continue;
    }
    if (byte === 0x2c) {
      if (depth === 1) expectingKey = true;
      if (inValue && depth === 2 && elementStart !== -1) {
        ranges.push([elementStart, trimEnd(body, i)]);
        elementStart = -1;
      }
    }
  }
  return ranges;
}

/** The end of the value before `at` (a `,` or `]`), whitespace left out. */
function trimEnd(body: Buffer, at: number): number {
  let end = at;
  while (end > 0 && whitespace.has(body[end - 1]!)) end -= 1;
  return end;
}

/** The bytes as they are, unless a line break sits between tokens: then every whitespace between tokens is dropped. */
function compact(bytes: Buffer): Buffer {
  if (!bytes.includes(0x0a) && !bytes.includes(0x0d)) return bytes;
  const out = Buffer.allocUnsafe(bytes.length);
  let length = 0;
  for (let i = 0; i < bytes.length; i += 1) {
    const byte = bytes[i]!;
    if (byte === quote) {
      const start = i;
      for (i += 1; bytes[i] !== quote; i += 1) if (bytes[i] === backslash) i += 1;
      length += bytes.copy(out, length, start, i + 1);
      continue;
    }
    if (!whitespace.has(byte)) out[length++] = byte;
  }
  return out.subarray(0, length);
}
