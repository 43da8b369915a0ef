/**
 * Reusable buffers for content bodies. Every blob is read into a buffer taken from here and given back once no
 * record of it is needed any more (its batch committed), instead of a fresh allocation per blob: the connector
 * then holds a steady set of buffers sized by what is in flight, rather than a trail of dead bodies waiting for
 * the garbage collector, so its memory stays flat and small however long the backlog.
 */
export class BodyPool {
  readonly #free = new Map<number, Buffer[]>();
  readonly #maxFreeBytes: number;
  #freeBytes = 0;

  /** `maxFreeBytes`: buffers given back beyond this are left to the garbage collector. */
  constructor(options: { maxFreeBytes?: number } = {}) {
    this.#maxFreeBytes = options.maxFreeBytes ?? 8 * 1024 * 1024;
  }

  /** A buffer of at least `bytes` (a power of two from 64 KiB), its content undefined. */
  take(bytes: number): Buffer {
    const size = sizeClass(bytes);
    const reused = this.#free.get(size)?.pop();
    if (reused) {
      this.#freeBytes -= size;
      return reused;
    }
    return Buffer.allocUnsafeSlow(size);
  }

  /** Gives back a buffer from `take` (the whole buffer, not a view of it). */
  give(buffer: Buffer): void {
    const size = buffer.length;
    if (size !== sizeClass(size) || this.#freeBytes + size > this.#maxFreeBytes) return;
    const list = this.#free.get(size) ?? [];
    list.push(buffer);
    this.#free.set(size, list);
    this.#freeBytes += size;
  }

  get freeBytes(): number {
    return this.#freeBytes;
  }
}

function sizeClass(bytes: number): number {
  let size = 64 * 1024;
  while (size < bytes) size *= 2;
  return size;
}

/** A content body longer than the configured bound (`--max-blob-bytes`): it is not read on. */
export class BodyTooLargeError extends Error {
  readonly limit: number;
  readonly announced: number | undefined;
  constructor(limit: number, announced: number | undefined) {
    super(announced === undefined ? `the body grew past ${limit} bytes` : `the body announces ${announced} bytes, more than ${limit}`);
    this.limit = limit;
    this.announced = announced;
  }
}

/**
 * Reads a body stream into a pooled buffer, growing it (by taking a larger one) when the stream is longer than
 * announced. Stops, dropping the rest of the stream, as soon as the body is known to exceed `maxBytes`. Returns
 * the buffer and how many bytes of it the body fills.
 */
export async function readPooled(body: AsyncIterable<Uint8Array> & { destroy?: () => void }, pool: BodyPool, expectedBytes: number | undefined, maxBytes = Number.POSITIVE_INFINITY): Promise<{ buffer: Buffer; length: number }> {
  if (expectedBytes !== undefined && expectedBytes > maxBytes) {
    body.destroy?.(); // not read: its connection is dropped
    throw new BodyTooLargeError(maxBytes, expectedBytes);
  }
  const chunks = body[Symbol.asyncIterator]();
  let buffer = pool.take(expectedBytes ?? 0);
  let length = 0;
  try {
    for (let next = await chunks.next(); !next.done; next = await chunks.next()) {
      const chunk = next.value;
      if (length + chunk.length > maxBytes) {
        await chunks.return?.(undefined);
        throw new BodyTooLargeError(maxBytes, undefined);
      }
      if (length + chunk.length > buffer.length) {
        const larger = pool.take(length + chunk.length);
        buffer.copy(larger, 0, 0, length);
        pool.give(buffer);
        buffer = larger;
      }
      buffer.set(chunk, length);
      length += chunk.length;
    }
  } catch (error) {
    pool.give(buffer);
    throw error;
  }
  return { buffer, length };
}
