import { describe, expect, it } from 'vitest';
import { creationSecond } from '../../../connector/core/commit.ts';

const second = (...utc: [number, number, number, number, number, number]) => Date.UTC(...utc) / 1000;

describe('creationSecond (the time part of a record key)', () => {
  const at0901 = second(2026, 10, 25, 9, 1, 0);

  it('reads a CreationTime without a zone as UTC, as the API writes it', () => {
    expect(creationSecond('2026-11-25T09:01:00')).toBe(at0901);
    expect(creationSecond('2026-11-25T09:01')).toBe(at0901);
    expect(creationSecond('2026-11-25')).toBe(second(2026, 10, 25, 0, 0, 0));
  });

  it('gives every spelling of the same second the same number: zone, offset, fraction', () => {
    for (const time of ['2026-11-25T09:01:00Z', '2026-11-25T09:01:00z', '2026-11-25T09:01:00.000Z', '2026-11-25T09:01:00.4', '2026-11-25T09:01:00.999',
      '2026-11-25T09:01:00.9999999', '2026-11-25T09:01:00.4567890Z', '2026-11-25T10:01:00+01:00', '2026-11-25T10:01:00+0100', '2026-11-25T04:01:00-05:00']) {
      expect(creationSecond(time), time).toBe(at0901);
    }
  });

  it('truncates to the second (towards the past, also before 1970) and does not round', () => {
    expect(creationSecond('2026-11-25T09:00:59.9999999')).toBe(at0901 - 1);
    expect(creationSecond('2026-11-25T09:01:01')).toBe(at0901 + 1);
    expect(creationSecond('1969-12-31T23:59:59.5')).toBe(-1);
  });

  it('is 0 for no CreationTime or one it cannot read (as is the epoch itself)', () => {
    for (const time of [undefined, '', 'yesterday', 'not a time', '2026-11-25T09:01:60', '2026-13-01T00:00:00']) expect(creationSecond(time), String(time)).toBe(0);
    expect(creationSecond('1970-01-01T00:00:00')).toBe(0);
  });

  it('reads the API\'s own form exactly as the date parser does, for every second of a leap year sampled', () => {
    for (let ms = Date.UTC(2024, 0, 1); ms < Date.UTC(2025, 0, 1); ms += 7_919_333) {
      const text = new Date(ms).toISOString().slice(0, 19);
      expect(creationSecond(text), text).toBe(Math.floor(Date.parse(`${text}Z`) / 1000));
    }
    for (const odd of ['2026-02-30T10:00:00', '2026-11-25T24:00:00', '2026-11-25 09:01:00', '２026-11-25T09:01:00']) {
      const parsed = Date.parse(`${odd}Z`);
      expect(creationSecond(odd), odd).toBe(Number.isNaN(parsed) ? 0 : Math.floor(parsed / 1000));
    }
  });
});
