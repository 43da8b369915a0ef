/**
 * A Microsoft Graph collection page (`{"@odata.context", "@odata.nextLink"?, "value": [ … ]}`) split into its items,
 * each kept as the bytes Graph sent ("bytes pass through", as content-records.ts does for audit blobs). The page is
 * validated by JSON.parse first (pages are small: 100 items by default, 1,000 at most); a scan then finds the byte
 * range of each element of the top-level `value` array, so that what a sink writes is exactly what Graph served.
 * An item whose bytes hold a line break between tokens (a pretty-printed page) is compacted, nothing inside a string
 * changed, so that line-oriented sinks keep one item per line.
 */
import { closeArray, closeObject, comma, compacted, cr, lf, openArray, stringEnd, valueEnd, whitespaceEnd } from '../../core/json-scanner.ts';
import type { Exchange } from '../../http/exchange.ts';
import { GraphApiError } from './graph-errors.ts';

export interface GraphPage {
  /** The page's items, parsed (for the decisions: id, lastModifiedDateTime) and as their exact bytes, in order. */
  readonly items: ReadonlyArray<{ readonly value: unknown; readonly bytes: Buffer }>;
  /** `@odata.nextLink`: the next page, to be followed verbatim; undefined on the last page. */
  readonly nextLink: string | undefined;
}

/** `path` of Microsoft Graph v1.0 under `graphRoot` (which may carry a path of its own, as a stand-in's does). */
export function graphV1Url(graphRoot: string, path: string): string {
  const root = new URL(graphRoot);
  return `${root.origin}${root.pathname.replace(/\/$/, '')}/v1.0/${path}`;
}

/** The page's `@odata.nextLink`, followed only on the origin the token is for (never sent anywhere else). */
export function nextPageOf(page: GraphPage, exchange: Pick<Exchange, 'onOrigin' | 'origin'>): string | undefined {
  return page.nextLink === undefined ? undefined : exchange.onOrigin(page.nextLink, (host) => host === undefined
    ? new GraphApiError('UNTRUSTED_URI', 'Microsoft Graph returned an @odata.nextLink that is not a URL', 0)
    : new GraphApiError('UNTRUSTED_URI', `Microsoft Graph returned an @odata.nextLink on ${host}, outside graphRoot ${exchange.origin}; the token is not sent there`, 0, {
      fix: 'check that graphRoot and cloud match the tenant',
    }));
}

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
 * The [start, end) byte ranges of the elements of the top-level object's `value` array (its last, as JSON.parse
 * reads a repeated key). The body is known to be valid JSON.
 */
function valueElementRanges(body: Buffer): Array<[number, number]> {
  const n = body.length;
  let ranges: Array<[number, number]> = [];
  let i = whitespaceEnd(body, 0, n) + 1;
  for (;;) {
    i = whitespaceEnd(body, i, n);
    if (body[i] === closeObject) return ranges;
    const keyEnd = stringEnd(body, i + 1, n);
    const key = body.toString('utf8', i + 1, keyEnd);
    i = whitespaceEnd(body, whitespaceEnd(body, keyEnd + 1, n) + 1, n);
    if (key === 'value' && body[i] === openArray) ranges = elementRanges(body, i);
    i = whitespaceEnd(body, valueEnd(body, i, n), n);
    if (body[i] === comma) i++;
  }
}

/** The [start, end) byte ranges of the elements of the array that opens at `at`. */
function elementRanges(body: Buffer, at: number): Array<[number, number]> {
  const n = body.length;
  const ranges: Array<[number, number]> = [];
  for (let i = at + 1; ;) {
    i = whitespaceEnd(body, i, n);
    if (body[i] === closeArray) return ranges;
    const end = valueEnd(body, i, n);
    ranges.push([i, end]);
    i = whitespaceEnd(body, end, n);
    if (body[i] === comma) i++;
  }
}

/** The bytes as they are, unless a line break sits between tokens (none can sit inside a string). */
function compact(bytes: Buffer): Buffer {
  return bytes.includes(lf) || bytes.includes(cr) ? compacted(bytes) : bytes;
}
