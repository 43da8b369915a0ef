/**
 * One Logs Ingestion row per record, with the stream's columns (contract/sentinel-stream.ts). The few fields a
 * query filters on are read from a parsed copy; `RawData` is the record's bytes as Microsoft sent them, as one JSON
 * string (the UTF-8 text escaped, never the parsed record serialized again), so that parsing the column gives back
 * exactly those bytes. OCSF rows carry the event in `OcsfEvent` instead.
 */
import type { SentinelColumn } from '../../../contract/sentinel-stream.ts';
import { creationTimeMs, type RawRecord } from '../../core/records.ts';
import type { RecordForm } from '../sink.ts';

type Row = Partial<Record<SentinelColumn, string | number>>;

/** CreationTime carries no zone but is UTC: as ISO 8601 with `Z`; the time of sending when it is absent or unreadable. */
export function timeGenerated(creationTime: string | undefined, now: () => Date = () => new Date()): string {
  const ms = creationTimeMs(creationTime);
  return (ms === undefined ? now() : new Date(ms)).toISOString();
}

function fieldsOf(text: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(text);
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? parsed as Record<string, unknown> : {};
  } catch {
    return {};
  }
}

const asText = (value: unknown) => (typeof value === 'string' ? value : undefined);

/** The row of one record (or of one OCSF event, `form` ocsf) as the JSON text of one array element. */
export function sentinelRow(record: RawRecord, contentType: string, form: RecordForm, now?: () => Date): Buffer {
  const text = record.bytes.toString('utf8');
  const head: Row = { TimeGenerated: timeGenerated(record.creationTime, now), ...(record.id !== undefined ? { Id: record.id } : {}), ContentType: contentType };
  if (form === 'ocsf') return Buffer.from(JSON.stringify({ ...head, OcsfEvent: text }), 'utf8');
  const fields = fieldsOf(text);
  const recordType = fields['RecordType'];
  const row: Row = {
    ...head,
    ...(typeof recordType === 'number' && Number.isInteger(recordType) ? { RecordType: recordType } : {}),
  };
  for (const name of ['Operation', 'Workload', 'UserId', 'ClientIP', 'OrganizationId'] as const) {
    const value = asText(fields[name]);
    if (value !== undefined) row[name] = value;
  }
  row.RawData = text;
  return Buffer.from(JSON.stringify(row), 'utf8');
}

/** The body of one call: the rows as a JSON array. */
export function rowsBody(rows: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [Buffer.from('[')];
  rows.forEach((row, index) => {
    if (index > 0) parts.push(Buffer.from(','));
    parts.push(row);
  });
  parts.push(Buffer.from(']'));
  return Buffer.concat(parts);
}

/**
 * Cuts rows into calls whose bodies (`[` rows joined by `,` `]`) stay within maxBytes, each with the index after its
 * last row; a row that cannot fit a call even alone is handed to `setAside` (by index) and sent in none.
 */
export function callsOf(rows: readonly Buffer[], maxBytes: number, setAside: (index: number) => void): Array<{ rows: Buffer[]; end: number }> {
  const calls: Array<{ rows: Buffer[]; end: number }> = [];
  let current: { rows: Buffer[]; end: number } | undefined;
  let size = 0;
  rows.forEach((row, index) => {
    if (2 + row.length > maxBytes) {
      setAside(index);
      if (current) current.end = index + 1;
      return;
    }
    if (current && size + 1 + row.length > maxBytes) current = undefined;
    if (current) {
      size += 1 + row.length;
    } else {
      current = { rows: [], end: index + 1 };
      calls.push(current);
      size = 2 + row.length;
    }
    current.rows.push(row);
    current.end = index + 1;
  });
  return calls;
}
