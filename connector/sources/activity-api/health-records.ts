/**
 * `run --emit-health`: records about the collection itself, written into the sinks beside the audit records, so
 * that the SIEM shows where the audit trail has holes or delays. They have their own record type
 * (`RecordType: "O365ConnectorHealth"`) and never count as audit records (not in `status`, not in de-duplication).
 * Each has a stable `Id` (a digest of what it reports), so a repeat of the same event is recognisable downstream.
 *
 * Events: `ContentExpired` (a blob expired before it could be fetched: its records are lost at the source),
 * `LateContent` (a sweep found a blob Microsoft listed late), `SubscriptionDisabled` (AF20023: an administrator
 * disabled the subscription), `Throttled` (the tenant's quota was spent during a pass: the connector slowed down and repeated the
 * refused calls; nothing is lost, records arrive later).
 */
import { createHash } from 'node:crypto';
import type { CollectedType } from '../../../contract/content-types.ts';
import type { RawRecord } from '../../core/records.ts';

export const healthRecordType = 'O365ConnectorHealth';

export type HealthEvent = 'ContentExpired' | 'LateContent' | 'SubscriptionDisabled' | 'Throttled';

/** A GUID-shaped digest of `key`: the same event, the same Id. */
function stableId(key: string): string {
  const hex = createHash('sha256').update(key).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

export function healthRecord(event: HealthEvent, contentType: CollectedType, at: Date, details: Record<string, string | number>, key: string): RawRecord {
  const creationTime = at.toISOString().slice(0, 19); // the API's own format: UTC without a zone
  const id = stableId(`${event} ${contentType} ${key}`);
  const bytes = Buffer.from(JSON.stringify({ Id: id, CreationTime: creationTime, RecordType: healthRecordType, Event: event, ContentType: contentType, ...details }), 'utf8');
  return { id, creationTime, bytes };
}
