import { describe, expect, it } from 'vitest';
import { Slots } from '../../../connector/http/slots.ts';

describe('Slots', () => {
  it('hands slots out first come, first served, and a waiter whose signal fires leaves the line with its reason', async () => {
    const slots = new Slots(1);
    await slots.acquire();
    const served: string[] = [];
    const first = slots.acquire().then(() => served.push('first'));
    const controller = new AbortController();
    const leaving = slots.acquire(controller.signal).then(() => served.push('leaving'));
    const third = slots.acquire().then(() => served.push('third'));
    controller.abort(new Error('stopped'));
    await expect(leaving).rejects.toThrow('stopped');
    slots.release();
    await first;
    slots.release();
    await third;
    expect(served).toEqual(['first', 'third']);
  });

  it('refuses at once when the signal has already fired, without taking a slot', async () => {
    const slots = new Slots(1);
    await expect(slots.acquire(AbortSignal.abort(new Error('gone')))).rejects.toThrow('gone');
    await expect(slots.acquire()).resolves.toBeUndefined();
  });
});
