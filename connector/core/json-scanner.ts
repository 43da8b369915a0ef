/**
 * The raw-JSON byte scanner both APIs' bodies go through, so that records keep the bytes Microsoft sent: token
 * ends (strings, numbers, literals, whole values), whitespace, and compaction. It looks at bytes, never decodes
 * them, and allocates nothing per byte or per token. Validation is as strict as JSON.parse: a body that ends
 * early or breaks the grammar throws JsonSyntaxError naming the byte, never the content.
 */

const tab = 0x09;
export const lf = 0x0a;
export const cr = 0x0d;
const space = 0x20;
const quote = 0x22;
export const comma = 0x2c;
const minus = 0x2d;
const zero = 0x30;
const nine = 0x39;
export const openArray = 0x5b;
const backslash = 0x5c;
export const closeArray = 0x5d;
const openObject = 0x7b;
export const closeObject = 0x7d;
const plus = 0x2b;
const dot = 0x2e;

export class JsonSyntaxError extends Error {
  /** The body ends before its value does (a connection cut mid-body), rather than breaking the grammar. */
  readonly cutShort: boolean;

  constructor(message: string, cutShort: boolean) {
    super(message);
    this.name = 'JsonSyntaxError';
    this.cutShort = cutShort;
  }
}

export function endsEarly(length: number): never {
  throw new JsonSyntaxError(`the body ends early, at byte ${length} (connection cut mid-body?)`, true);
}

export function invalid(what: string, at: number, length: number): never {
  throw new JsonSyntaxError(`${what} at byte ${at} of ${length}`, false);
}

/** The byte after a backslash: 1 for a one-character escape, 2 for `u` (four hex digits follow). */
const escapes = new Uint8Array(256);
for (const c of '"\\/bfnrt') escapes[c.charCodeAt(0)] = 1;
escapes[0x75] = 2;
const hexDigits = new Uint8Array(256);
for (const c of '0123456789abcdefABCDEF') hexDigits[c.charCodeAt(0)] = 1;

/** Bytes that end a run of ordinary string contents: the closing quote, a backslash, a control character. */
const stringStops = new Uint8Array(256);
for (let b = 0; b < space; b++) stringStops[b] = 1;
stringStops[quote] = 1;
stringStops[backslash] = 1;

/** Whether the last string read by stringEnd held an escape (module state: no object per string). */
export let stringEscaped = false;

/**
 * The index of the quote that closes the string whose contents start at `i`. Every byte is looked at anyway
 * (a raw control character must be refused), so one loop does it, one table look-up per byte; a
 * Buffer.indexOf per string to find the quote first measured about half as fast on real records, whose
 * strings are short.
 */
export function stringEnd(body: Uint8Array, i: number, n: number): number {
  stringEscaped = false;
  for (;;) {
    while (i < n && stringStops[body[i]!] === 0) i++;
    if (i >= n) endsEarly(n);
    const b = body[i]!;
    if (b === quote) return i;
    if (b !== backslash) invalid('a control character inside a string', i, n);
    stringEscaped = true;
    if (i + 1 >= n) endsEarly(n);
    const kind = escapes[body[i + 1]!];
    if (kind === 1) {
      i += 2;
    } else if (kind === 2) {
      for (let k = i + 2; k < i + 6; k++) {
        if (k >= n) endsEarly(n);
        if (hexDigits[body[k]!] === 0) invalid('an invalid \\u escape in a string', i, n);
      }
      i += 6;
    } else {
      invalid('an invalid escape in a string', i, n);
    }
  }
}

function isDigit(b: number | undefined): boolean {
  return b !== undefined && b >= zero && b <= nine;
}

/** The index just after the number starting at `i`: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
export function numberEnd(body: Uint8Array, i: number, n: number): number {
  if (body[i] === minus) i++;
  const first = body[i];
  if (first === zero) i++;
  else if (isDigit(first)) while (isDigit(body[++i]));
  else if (i >= n) endsEarly(n);
  else invalid('an invalid number', i, n);
  if (body[i] === dot) {
    if (!isDigit(body[++i])) (i >= n ? endsEarly(n) : invalid('an invalid number', i, n));
    while (isDigit(body[++i]));
  }
  const e = body[i];
  if (e === 0x65 || e === 0x45) {
    const sign = body[++i];
    if (sign === plus || sign === minus) i++;
    if (!isDigit(body[i])) (i >= n ? endsEarly(n) : invalid('an invalid number', i, n));
    while (isDigit(body[++i]));
  }
  return i;
}

/** `true`, `false` and `null` by their first byte. */
export const literals: Readonly<Record<number, Uint8Array>> = { 0x74: Buffer.from('true'), 0x66: Buffer.from('false'), 0x6e: Buffer.from('null') };

/** The index just after `true`, `false` or `null` starting at `i`. */
export function literalEnd(body: Uint8Array, i: number, n: number, word: Uint8Array): number {
  for (let k = 1; k < word.length; k++) {
    if (i + k >= n) endsEarly(n);
    if (body[i + k] !== word[k]) invalid('an unexpected character', i + k, n);
  }
  return i + word.length;
}

/** The index of the first byte at or after `i` that is not whitespace (`n` when none is). */
export function whitespaceEnd(body: Uint8Array, i: number, n: number): number {
  while (i < n && (body[i] === space || body[i] === lf || body[i] === cr || body[i] === tab)) i++;
  return i;
}

/**
 * The index just after the value starting at `i` of a body already known to be valid JSON (JSON.parse read it):
 * only strings and nesting are followed.
 */
export function valueEnd(body: Uint8Array, i: number, n: number): number {
  let depth = 0;
  for (; i < n; i++) {
    const b = body[i]!;
    if (b === quote) i = stringEnd(body, i + 1, n);
    else if (b === openObject || b === openArray) depth++;
    else if (b === closeObject || b === closeArray) {
      if (depth === 0) return i; // the end of the container a number or literal stands in
      depth--;
    } else if (depth === 0 && (b === comma || b === space || b === lf || b === cr || b === tab)) return i;
    else continue;
    if (depth === 0) return i + 1;
  }
  return i;
}

/** The value without its whitespace between tokens (strings untouched), in a new buffer. */
export function compacted(value: Buffer): Buffer {
  const out = Buffer.allocUnsafe(value.length);
  let o = 0;
  let inString = false;
  for (let k = 0; k < value.length; k++) {
    const b = value[k]!;
    if (inString) {
      out[o++] = b;
      if (b === backslash) out[o++] = value[++k]!;
      else if (b === quote) inString = false;
    } else if (b !== space && b !== lf && b !== cr && b !== tab) {
      out[o++] = b;
      if (b === quote) inString = true;
    }
  }
  return out.subarray(0, o);
}
