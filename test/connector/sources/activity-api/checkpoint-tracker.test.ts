import { describe, expect, it } from 'vitest';
import { CheckpointTracker } from '../../../../connector/sources/activity-api/checkpoint-tracker.ts';
import type { ContentBlob } from '../../../../connector/sources/activity-api/activity-api.ts';

const blob = (contentId: string, contentCreated: string): ContentBlob => ({
  contentType: 'Audit.Exchange', contentId, contentUri: `https://manage.office.com/api/v1.0/t/activity/feed/audit/${contentId}`,
  contentCreated, contentExpiration: '2026-12-02T00:00:00.000Z',
});
const ms = (iso: string) => Date.parse(iso);
const far = ms('2030-01-01T00:00:00Z');

describe('checkpoint tracker (ordered acknowledgements)', () => {
  it('moves to the contentCreated of the oldest blob not yet acknowledged, whatever order the acks come in', () => {
    const tracker = new CheckpointTracker(undefined);
    const blobs = [blob('c', '2026-11-25T08:30:00.000Z'), blob('a', '2026-11-25T08:10:00.000Z'), blob('b', '2026-11-25T08:20:00.000Z')];
    for (const b of blobs) tracker.listed(b);
    tracker.windowListed(new Date('2026-11-25T09:00:00Z'));
    tracker.acknowledged('c');
    tracker.acknowledged('b');
    expect(tracker.advance(far)).toBe(ms('2026-11-25T08:10:00Z'));
    tracker.acknowledged('a');
    expect(tracker.advance(far)).toBe(ms('2026-11-25T09:00:00Z'));
  });

  it('never passes the end of what is completely listed, nor the ceiling, and never moves back', () => {
    const tracker = new CheckpointTracker(ms('2026-11-25T07:00:00Z'));
    expect(tracker.advance(far)).toBe(ms('2026-11-25T07:00:00Z')); // the first window is still being listed
    tracker.windowListed(new Date('2026-11-25T06:30:00Z')); // the overlap window ends before the checkpoint
    expect(tracker.advance(far)).toBe(ms('2026-11-25T07:00:00Z'));
    tracker.windowListed(new Date('2026-11-25T12:00:00Z'));
    expect(tracker.advance(ms('2026-11-25T11:45:00Z'))).toBe(ms('2026-11-25T11:45:00Z'));
  });

  it('holds the checkpoint still for a pending blob whose contentCreated cannot be read, until it is acknowledged', () => {
    const tracker = new CheckpointTracker(ms('2026-11-25T07:00:00Z'));
    tracker.listed(blob('garbled', 'not a time'));
    tracker.windowListed(new Date('2026-11-25T12:00:00Z'));
    expect(tracker.advance(far)).toBe(ms('2026-11-25T07:00:00Z'));
    tracker.acknowledged('garbled');
    expect(tracker.advance(far)).toBe(ms('2026-11-25T12:00:00Z'));
    expect(new CheckpointTracker(undefined).advance(far)).toBeUndefined();
  });
});
