import { describe, expect, it } from 'vitest';
import { BodyPool, readPooled } from '../../../connector/http/body-pool.ts';

async function* chunks(...parts: string[]): AsyncGenerator<Uint8Array> {
  for (const part of parts) yield Buffer.from(part);
}

describe('BodyPool', () => {
  it('hands a buffer given back to the next taker of its size class, instead of allocating', () => {
    const pool = new BodyPool();
    const first = pool.take(100_000);
    expect(first.length).toBe(128 * 1024);
    pool.give(first);
    expect(pool.take(70_000)).toBe(first);
    expect(pool.take(70_000)).not.toBe(first);
  });

  it('keeps no more than maxFreeBytes of idle buffers', () => {
    const pool = new BodyPool({ maxFreeBytes: 128 * 1024 });
    const a = pool.take(1);
    const b = pool.take(1);
    const c = pool.take(1);
    for (const buffer of [a, b, c]) pool.give(buffer);
    expect(pool.freeBytes).toBe(128 * 1024);
    expect(pool.take(1)).toBe(b);
    expect(pool.take(1)).not.toBe(c);
  });

  it('ignores a view handed back instead of a whole pooled buffer', () => {
    const pool = new BodyPool();
    pool.give(pool.take(1).subarray(0, 10));
    expect(pool.freeBytes).toBe(0);
  });
});

describe('readPooled', () => {
  it('reads a body into a pooled buffer, growing it when the body is longer than announced', async () => {
    const pool = new BodyPool();
    const big = 'x'.repeat(70 * 1024);
    const { buffer, length } = await readPooled(chunks('[{"Id":"a"},', big, ']'), pool, 10);
    expect(buffer.subarray(0, length).toString()).toBe(`[{"Id":"a"},${big}]`);
    expect(buffer.length).toBe(128 * 1024);
    expect(pool.freeBytes).toBe(64 * 1024); // the outgrown buffer went back to the pool
  });

  it('gives the buffer back when the body fails midway', async () => {
    const pool = new BodyPool();
    async function* broken(): AsyncGenerator<Uint8Array> {
      yield Buffer.from('[{"Id":');
      throw new Error('socket hang up');
    }
    await expect(readPooled(broken(), pool, 100)).rejects.toThrow('socket hang up');
    expect(pool.freeBytes).toBe(64 * 1024);
  });
});

describe('readPooled with a size bound', () => {
  it('refuses a body that announces more than the bound without reading it', async () => {
    const pool = new BodyPool();
    let read = 0;
    let destroyed = false;
    const body = Object.assign((async function* () { for (;;) { read += 1; yield Buffer.alloc(1024); } })(), { destroy: () => { destroyed = true; } });
    await expect(readPooled(body, pool, 10_000_000, 1_000_000)).rejects.toMatchObject({ announced: 10_000_000, limit: 1_000_000 });
    expect(read).toBe(0);
    expect(destroyed).toBe(true);
    expect(pool.freeBytes).toBe(0);
  });

  it('stops reading an endless body as soon as it passes the bound, and closes the stream', async () => {
    const pool = new BodyPool();
    let read = 0;
    let closed = false;
    async function* endless(): AsyncGenerator<Uint8Array> {
      try {
        for (;;) { read += 1; yield Buffer.alloc(64 * 1024); }
      } finally {
        closed = true;
      }
    }
    await expect(readPooled(endless(), pool, undefined, 1024 * 1024)).rejects.toThrow(/grew past 1048576 bytes/);
    expect(read).toBe(17);
    expect(closed).toBe(true);
    expect(pool.freeBytes).toBeGreaterThan(0); // its buffer went back to the pool
  });
});
