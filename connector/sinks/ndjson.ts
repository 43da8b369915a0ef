/**
 * NDJSON as the sinks write it: each line followed by a line feed, in one buffer built with one allocation and
 * one copy per line (no decoding, no string concatenation). The lines are records' bytes (which hold no line
 * break: content-records.ts compacts the rare record that had one between its tokens) or lines built around them.
 */
export function ndjson(lines: readonly Uint8Array[]): Buffer {
  let length = 0;
  for (const line of lines) length += line.length + 1;
  const out = Buffer.allocUnsafe(length);
  let offset = 0;
  for (const line of lines) {
    out.set(line, offset);
    offset += line.length;
    out[offset++] = 0x0a;
  }
  return out;
}
