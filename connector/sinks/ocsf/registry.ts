/**
 * Which family maps a record, in order: the first whose test accepts it and whose mapping finds what its class
 * requires; a record no family takes (or one whose family finds its class's required parts missing) gets the generic
 * API Activity mapping, and counts as a fallback. Records are parsed here, once per record, for every family.
 * A family mapping that throws (a record shaped as no schema documents) also gets the generic mapping and counts as a
 * mapping error too: one odd record must never stop the sinks, which would retry it for ever.
 */
import { buildEvent, classUid, objectOf, type AuditRecord, type Mapped } from './event.ts';
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
  /** The family's mapping threw: the event is the generic mapping's. */
  readonly mappingError: boolean;
  /** What the family threw, as "<family>: <error>", when it did. */
  readonly error?: string;
}

export interface MapOptions {
  readonly contentType?: string | undefined;
  /** The families to try, in order (tests replace one). */
  readonly families?: readonly Family[];
}

/** One record's OCSF event: `text` is the record's bytes as text (they become `raw_data`). */
export function mapRecordText(text: string, options: MapOptions = {}): OcsfMapping {
  let record: AuditRecord;
  try {
    record = objectOf(JSON.parse(text)) ?? {};
  } catch {
    record = {}; // content-records only hands on JSON objects; this keeps a bug there from stopping the sink
  }
  const build = (mapped: Mapped, from: AuditRecord = record) => JSON.stringify(buildEvent(from, mapped, { rawText: text, contentType: options.contentType }));
  let error: string | undefined;
  for (const candidate of options.families ?? families) {
    if (!candidate.accepts(record)) continue;
    try {
      const mapped = candidate.map(record);
      if (mapped) return { json: build(mapped), classUid: classUid(mapped.class), className: mapped.class.caption, family: candidate.name, fallback: false, mappingError: false };
    } catch (thrown) {
      error = `${candidate.name}: ${thrown instanceof Error ? `${thrown.name}: ${thrown.message}` : String(thrown)}`;
    }
    break;
  }
  const mapped = mapApiActivity(record);
  let json: string;
  try {
    json = build(mapped);
  } catch (thrown) {
    // The generic mapping reads only common-schema members as text; should even it fail, the event keeps raw_data.
    error ??= `generic: ${thrown instanceof Error ? `${thrown.name}: ${thrown.message}` : String(thrown)}`;
    json = build(mapApiActivity({}), {});
  }
  return { json, classUid: classUid(mapped.class), className: mapped.class.caption, family: 'generic', fallback: true, mappingError: error !== undefined, ...(error !== undefined ? { error } : {}) };
}
