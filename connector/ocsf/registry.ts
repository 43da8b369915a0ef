/**
 * Which family maps a record, in order: the first whose test accepts it and whose mapping finds what its class
 * requires; a record no family takes (or one whose family finds its class's required parts missing) gets the generic
 * API Activity mapping, and counts as a fallback. Records are parsed here, once per record, for every family.
 */
import { buildEvent, classUid, type AuditRecord, type Mapped, type OcsfClass } from './event.ts';
import { isSignIn, mapSignIn } from './sign-ins.ts';
import { isDirectoryChange, mapDirectoryChange } from './directory-changes.ts';
import { isFileOperation, mapFileOperation } from './file-hosting.ts';
import { isExchange, mapExchange } from './exchange.ts';
import { isAlert, isDlp, mapAlert, mapDlp } from './findings.ts';
import { mapApiActivity } from './api-activity.ts';

export interface Family {
  readonly name: string;
  readonly accepts: (record: AuditRecord) => boolean;
  readonly map: (record: AuditRecord) => Mapped | undefined;
}

/**
 * Order matters where tests overlap: DLP before Exchange (DLP records can say Workload Exchange); directory changes,
 * known by their operation, before sign-ins, known partly by record type.
 */
export const families: readonly Family[] = [
  { name: 'dlp', accepts: isDlp, map: mapDlp },
  { name: 'alerts', accepts: isAlert, map: mapAlert },
  { name: 'directory-changes', accepts: isDirectoryChange, map: mapDirectoryChange },
  { name: 'sign-ins', accepts: isSignIn, map: mapSignIn },
  { name: 'file-hosting', accepts: isFileOperation, map: mapFileOperation },
  { name: 'exchange', accepts: isExchange, map: mapExchange },
];

export interface OcsfMapping {
  /** The event as JSON text. */
  readonly json: string;
  readonly classUid: number;
  readonly className: string;
  /** The family that mapped it, or `generic`. */
  readonly family: string;
  readonly fallback: boolean;
}

/** One record's OCSF event: `text` is the record's bytes as text (they become `raw_data`). */
export function mapRecordText(text: string, options: { contentType?: string | undefined; now?: () => number } = {}): OcsfMapping {
  let record: AuditRecord;
  try {
    const parsed = JSON.parse(text) as unknown;
    record = parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? parsed as AuditRecord : {};
  } catch {
    record = {}; // content-records only hands on JSON objects; this keeps a bug there from stopping the sink
  }
  let mapped: Mapped | undefined;
  let family = 'generic';
  for (const candidate of families) {
    if (!candidate.accepts(record)) continue;
    mapped = candidate.map(record);
    if (mapped) family = candidate.name;
    break;
  }
  mapped ??= mapApiActivity(record);
  const event = buildEvent(record, mapped, { rawText: text, contentType: options.contentType, ...(options.now ? { now: options.now } : {}) });
  return { json: JSON.stringify(event), classUid: classUid(mapped.class), className: mapped.class.caption, family, fallback: family === 'generic' };
}

/** For documentation and status: the classes a family can emit. */
export function describeClass(ocsfClass: OcsfClass): string {
  return `${ocsfClass.caption} (${classUid(ocsfClass)})`;
}
