import { describe, expect, it } from 'vitest';
import { Deduplicator } from '../../../connector/pipeline/deduplicator.ts';

describe('deduplicator', () => {
  it('remembers ids across a restart through its entries', () => {
    const first = new Deduplicator();
    first.add('a', 1000);
    first.add('b', 2000);
    const restored = new Deduplicator(first.entries());
    expect(restored.has('a')).toBe(true);
    expect(restored.has('c')).toBe(false);
  });

  it('stays bounded by count, forgetting the oldest first', () => {
    const dedupe = new Deduplicator([], { maxIds: 3 });
    for (const [i, id] of ['a', 'b', 'c', 'd'].entries()) dedupe.add(id, i);
    expect(dedupe.size).toBe(3);
    expect(dedupe.has('a')).toBe(false);
    expect(dedupe.has('d')).toBe(true);
  });

  it('forgets ids of blobs older than the horizon', () => {
    const dedupe = new Deduplicator([['old', 1000], ['new', 5000]]);
    dedupe.prune(3000);
    expect(dedupe.has('old')).toBe(false);
    expect(dedupe.has('new')).toBe(true);
  });
});
