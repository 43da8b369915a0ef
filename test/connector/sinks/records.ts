/**
 * Realistic audit records for the sink tests: the shared fixture records (real tenant excerpts), repeated with
 * fresh Ids, and every third one carrying a newline, tabs and non-ASCII text in a field, as file names and
 * subjects really do.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { AuditRecord } from '../../../connector/sinks/sink.ts';

const fixtures = join(import.meta.dirname, '../../fixtures/records');

export const fixtureRecords: readonly AuditRecord[] = readdirSync(fixtures).filter((f) => f.endsWith('.jsonl')).sort()
  .flatMap((file) => readFileSync(join(fixtures, file), 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as AuditRecord));

export function auditRecords(count: number, prefix = 'rec'): AuditRecord[] {
  return Array.from({ length: count }, (_, i) => {
    const base = fixtureRecords[i % fixtureRecords.length]!;
    return {
      ...base,
      Id: `${prefix}-${String(i).padStart(6, '0')}`,
      ...(i % 3 === 0 ? { ObjectId: `Überprüfung — «Bericht ${i}» 報告書.docx\nzweite Zeile\r\n\tdritte` } : {}),
    };
  });
}
