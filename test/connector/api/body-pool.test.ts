import { describe, expect, it } from 'vitest';
import { BodyPool, readPooled } from '../../../connector/api/body-pool.ts';

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
