/**
 * A page of the audit search's records (`auditLogRecord`s) as the records a sink writes: each record's `auditData`
 * member, which is the audit record itself, as the bytes Graph sent, less the OData annotations Graph adds inside it
 * (`"@odata.type":"#microsoft.graph.security.auditData"`), cut out by byte slicing. So a record reads exactly as the
 * Management Activity API carries it, whichever source delivered it, and nothing is re-serialized.
 */
import { closeObject, comma, stringEnd, valueEnd, whitespaceEnd } from '../../core/json-scanner.ts';
import type { RawRecord } from '../../core/records.ts';
import type { GraphPage } from './graph-page.ts';

export interface SearchRecord extends RawRecord {
  /** Graph's `service` (the record's Workload) and `auditLogRecordType`: which content type the record belongs to. */
  readonly service: string | undefined;
  readonly recordType: string | undefined;
}

/** An element of a page that carries no audit record (no `auditData` object with a string Id). */
export interface NotARecord {
  readonly index: number;
  readonly reason: string;
  readonly bytes: Buffer;
}

const quote = 0x22;
const colon = 0x3a;
const openObject = 0x7b;

export function searchRecordsOf(page: GraphPage): { records: SearchRecord[]; rejected: NotARecord[] } {
  const records: SearchRecord[] = [];
  const rejected: NotARecord[] = [];
  page.items.forEach(({ value, bytes }, index) => {
    const item = value as { auditData?: unknown; service?: unknown; auditLogRecordType?: unknown } | null;
    const data = item?.auditData as { Id?: unknown; CreationTime?: unknown } | null | undefined;
    const range = typeof data === 'object' && data !== null && !Array.isArray(data) ? memberValueRange(bytes, 'auditData') : undefined;
    if (!range || typeof data?.Id !== 'string') {
      rejected.push({ index, reason: range ? 'its auditData has no string Id' : 'it has no auditData object', bytes });
      return;
    }
    records.push({
      id: data.Id,
      creationTime: typeof data.CreationTime === 'string' ? data.CreationTime : undefined,
      bytes: withoutAnnotations(bytes.subarray(range[0], range[1])),
      service: typeof item?.service === 'string' ? item.service : undefined,
      recordType: typeof item?.auditLogRecordType === 'string' ? item.auditLogRecordType : undefined,
    });
  });
  return { records, rejected };
}

/** The [start, end) of the value of the top-level member `name` of the JSON object `bytes` (known valid); its last, as JSON.parse reads a repeated key. */
function memberValueRange(bytes: Buffer, name: string): [number, number] | undefined {
  let found: [number, number] | undefined;
  for (const member of members(bytes)) {
    if (member.key === name) found = [member.valueStart, member.valueEnd];
  }
  return found;
}

interface Member {
  readonly key: string;
  /** Where the member's key begins, and where its value begins and ends. */
  readonly start: number;
  readonly valueStart: number;
  readonly valueEnd: number;
}

/** The members of the JSON object `bytes` (known valid), in order. */
function* members(bytes: Buffer): Generator<Member> {
  const n = bytes.length;
  let i = whitespaceEnd(bytes, 0, n);
  if (bytes[i] !== openObject) return;
  i = whitespaceEnd(bytes, i + 1, n);
  while (i < n && bytes[i] === quote) {
    const keyEnd = stringEnd(bytes, i + 1, n);
    const key = bytes.toString('utf8', i + 1, keyEnd);
    let at = whitespaceEnd(bytes, keyEnd + 1, n);
    if (bytes[at] === colon) at = whitespaceEnd(bytes, at + 1, n);
    const end = valueEnd(bytes, at, n);
    yield { key, start: i, valueStart: at, valueEnd: end };
    i = whitespaceEnd(bytes, end, n);
    if (bytes[i] === comma) i = whitespaceEnd(bytes, i + 1, n);
    else if (bytes[i] === closeObject) return;
  }
}

/** The object without its `@odata.*` members. */
export function withoutAnnotations(object: Buffer): Buffer {
  const all = [...members(object)];
  if (!all.some((member) => member.key.startsWith('@odata.'))) return object;
  const kept = all.filter((member) => !member.key.startsWith('@odata.'));
  const firstKept = all.findIndex((member) => !member.key.startsWith('@odata.'));
  // Graph's way (the annotations first): the rest of the object as it came, byte for byte.
  if (firstKept >= 0 && all.slice(firstKept).every((member) => !member.key.startsWith('@odata.'))) return Buffer.concat([Buffer.from('{'), object.subarray(all[firstKept]!.start)]);
  const parts: Buffer[] = [Buffer.from('{')];
  kept.forEach((member, i) => {
    if (i > 0) parts.push(Buffer.from(','));
    parts.push(object.subarray(member.start, member.valueEnd));
  });
  parts.push(Buffer.from('}'));
  return Buffer.concat(parts);
}
