/**
 * NDJSON as the sinks write it: each line followed by a line feed, in one buffer built with one copy per line (no
 * decoding, no string concatenation). The lines are records' bytes (which hold no line break: content-records.ts
 * compacts the rare record that had one between its tokens) or lines built around them.
 */
export function ndjson(lines: readonly Uint8Array[], into?: LineBuffer): Buffer {
  let length = 0;
  for (const line of lines) length += line.length + 1;
  const out = into ? into.take(length) : Buffer.allocUnsafe(length);
  let offset = 0;
  for (const line of lines) {
    out.set(line, offset);
    offset += line.length;
    out[offset++] = 0x0a;
  }
  return out;
}

/**
 * One buffer a sink reuses for every batch it writes (a batch is done with before the next is built), so that
 * writing does not allocate a batch-sized buffer each time: memory that the allocator would then hold, scattered
 * between smaller blocks, long after the garbage collector freed it.
 */
export class LineBuffer {
  #buffer = Buffer.allocUnsafeSlow(0);

  /** A view of `length` bytes, valid until the next call. */
  take(length: number): Buffer {
    if (this.#buffer.length < length) this.#buffer = Buffer.allocUnsafeSlow(Math.max(length, Math.ceil(this.#buffer.length * 1.5)));
    return this.#buffer.subarray(0, length);
  }
}
