import { describe, expect, it } from 'vitest';
import { Telemetry } from '../../../connector/observe/telemetry.ts';

describe('telemetry', () => {
  it('counts per component and keeps the last error with its stage and discards', () => {
    const telemetry = new Telemetry({ now: () => new Date('2026-11-25T00:00:00Z') });
    const fetcher = telemetry.component('fetcher', 'source');
    fetcher.received(10, 1000);
    fetcher.received(5, 500);
    fetcher.sent(15, 1500);
    fetcher.error({ stage: 'receiving', code: 'AF20051', message: 'expired', discarded: 3 });
    const [snap] = telemetry.snapshot();
    expect(snap).toMatchObject({ name: 'fetcher', receivedRecords: 15, receivedBytes: 1500, sentRecords: 15, errors: 1, discardedRecords: 3 });
    expect(snap!.errorsByCode).toEqual({ AF20051: 1 });
    expect(snap!.lastError).toMatchObject({ stage: 'receiving', code: 'AF20051', at: '2026-11-25T00:00:00.000Z' });
  });
});
