/**
 * Which records of the audit search belong to which content type, as the Management Activity API files them:
 * DLP.All holds the DLP policy matches of Exchange, SharePoint and OneDrive; Audit.AzureActiveDirectory,
 * Audit.Exchange and Audit.SharePoint their workloads' other records; Audit.General everything else (Teams,
 * Power BI, Forms, Defender, Copilot, … and workloads Microsoft adds later). A query asks for a content type's
 * workloads or record types; Audit.General's asks for everything, and the records of the other four are dropped.
 */
import type { ContentType } from '../../../contract/content-types.ts';

/** The auditLogRecordType values (Graph's enum names) of DLP.All's records. */
const dlpRecordTypes = ['complianceDLPSharePoint', 'complianceDLPExchange', 'complianceDLPSharePointClassification', 'complianceDLPExchangeClassification'];
const workloadsOf: Partial<Record<ContentType, readonly string[]>> = {
  'Audit.AzureActiveDirectory': ['AzureActiveDirectory'],
  'Audit.Exchange': ['Exchange'],
  'Audit.SharePoint': ['SharePoint', 'OneDrive'],
};

export interface QueryFilters {
  readonly serviceFilters?: readonly string[];
  readonly recordTypeFilters?: readonly string[];
}

/** What a query of `contentType`'s records filters on (Audit.General: nothing). */
export function queryFiltersOf(contentType: ContentType): QueryFilters {
  if (contentType === 'DLP.All') return { recordTypeFilters: dlpRecordTypes };
  const workloads = workloadsOf[contentType];
  return workloads ? { serviceFilters: workloads } : {};
}

const dlp = new Set(dlpRecordTypes.map((type) => type.toLowerCase()));
const contentTypeOfWorkload = new Map(Object.entries(workloadsOf).flatMap(([type, workloads]) => workloads.map((workload) => [workload.toLowerCase(), type as ContentType] as const)));

/** The content type the Management Activity API files a record under, from the search record's `service` and `auditLogRecordType`. */
export function contentTypeOfSearchRecord(service: string | undefined, recordType: string | undefined): ContentType {
  if (recordType !== undefined && dlp.has(recordType.toLowerCase())) return 'DLP.All';
  return (service === undefined ? undefined : contentTypeOfWorkload.get(service.toLowerCase())) ?? 'Audit.General';
}
