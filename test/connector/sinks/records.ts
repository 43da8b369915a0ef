/**
 * Realistic audit records for the sink tests, as the sinks get them: RawRecords, split from a blob body by the
 * connector's own content-records.ts, so `id` and `creationTime` are read as in production. They are the
 * fixture records (test/fixtures/records) with fresh Ids, in three forms taking turns, so that every batch,
 * even of one record, holds bytes that parsing and serializing again would change:
 * - 0: compact, a newline, tabs and non-ASCII text in ObjectId (as file names and subjects really have), and
 *   the encodings JSON.stringify(JSON.parse(...)) rewrites: integer-like keys out of order, 1.0, 1e3, -0,
 *   \u00e9 and \/ escapes, escaped quotes and backslashes, an integer above 2^53, raw U+2028 and U+2029; plus
 *   a nested "Id" and a superseded first "Id" (the last one is the record's, as JSON.parse reads it).
 * - 1: compact, as JSON.stringify writes it.
 * - 2: the fixture line's own bytes (a space after each `:` and `,`), only the Id value replaced.
 * Tests compare the BYTES a destination received with `bytes`: a comparison of parsed values cannot see the
 * difference these records are there to show.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { contentRecords } from '../../../connector/sources/activity-api/content-records.ts';
import type { RawRecord } from '../../../connector/core/records.ts';

const fixtures = join(import.meta.dirname, '../../fixtures/records');

const fixtureLines: readonly string[] = readdirSync(fixtures).filter((f) => f.endsWith('.jsonl')).sort()
  .flatMap((file) => readFileSync(join(fixtures, file), 'utf8').split('\n').filter(Boolean));

/** One record's JSON text as a RawRecord, the way the connector reads it from a blob. */
export function rawRecord(text: string): RawRecord {
  const { records, rejected } = contentRecords(Buffer.from(`[${text}]`));
  if (records.length === 1 && rejected.length === 0) return records[0]!;
  // An object without a string Id: the pipeline sets such elements aside; the sinks still cope with one.
  if (records.length === 0 && rejected.length === 1 && rejected[0]!.reason === 'no string Id') {
    const creationTime = (JSON.parse(text) as { CreationTime?: unknown }).CreationTime;
    return { id: undefined, creationTime: typeof creationTime === 'string' ? creationTime : undefined, bytes: rejected[0]!.bytes };
  }
  throw new Error('rawRecord takes the text of one JSON object');
}

/** The fixture records exactly as in the fixture files. */
export const fixtureRecords: readonly RawRecord[] = fixtureLines.map(rawRecord);

/** Fields whose bytes change when parsed and serialized again (inserted before a record's closing brace). */
export const trickyFields = ',"10":1,"2":2,"Ratio":1.0,"Count":1e3,"Offset":-0,"Size":12345678901234567890,'
  + '"Name":"Caf\\u00e9 \\/ \\"quoted\\" back\\\\slash","Separators":"a\u2028b\u2029c","Target":[{"Id":"nested-not-the-record-id"}]';

export function auditRecords(count: number, prefix = 'rec'): RawRecord[] {
  return Array.from({ length: count }, (_, i) => {
    const line = fixtureLines[i % fixtureLines.length]!;
    const id = `${prefix}-${String(i).padStart(6, '0')}`;
    if (i % 3 === 2) return rawRecord(line.replace(/"Id": "[^"]*"/, `"Id": "${id}"`));
    const base = JSON.parse(line) as Record<string, unknown>;
    if (i % 3 === 1) return rawRecord(JSON.stringify({ ...base, Id: id }));
    const text = JSON.stringify({ ...base, Id: id, ObjectId: `Überprüfung — «Bericht ${i}» 報告書.docx\nzweite Zeile\r\n\tdritte` });
    return rawRecord(`{"Id":"superseded",${text.slice(1, -1)}${trickyFields}}`);
  });
}

/** A buffer cut at its line feeds (the last line's feed optional). */
export function lines(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let start = 0; start < bytes.length;) {
    const end = bytes.indexOf(0x0a, start);
    out.push(bytes.subarray(start, end < 0 ? bytes.length : end));
    start = end < 0 ? bytes.length : end + 1;
  }
  return out;
}

/** What an NDJSON destination must have received for these records: their bytes, each followed by a line feed. */
export function ndjsonOf(records: readonly RawRecord[]): Buffer {
  return Buffer.concat(records.flatMap((record) => [record.bytes, Buffer.from('\n')]));
}
