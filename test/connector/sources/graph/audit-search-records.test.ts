import { describe, expect, it } from 'vitest';
import { searchRecordsOf, withoutAnnotations } from '../../../../connector/sources/graph/audit-search-records.ts';
import { contentTypeOfSearchRecord, queryFiltersOf } from '../../../../connector/sources/graph/audit-search-scope.ts';
import { graphPage } from '../../../../connector/sources/graph/graph-page.ts';

/** A record as the Management Activity API serves it, with encodings a re-serialization would change. */
const recordText = '{"CreationTime":"2026-11-20T08:00:00","Id":"6c0e3a1e-0000-4000-8000-000000000001","Operation":"FileAccessed","RecordType":6,"Workload":"SharePoint","2":"b","1":"a","Size":1.0,"Url":"https:\\/\\/contoso.sharepoint.com\\/x","Name":"caf\\u00e9","Big":12345678901234567890}';
const annotated = `{"@odata.type":"#microsoft.graph.security.auditData",${recordText.slice(1)}`;

function page(items: string[], next?: string): Buffer {
  return Buffer.from(`{"@odata.context":"https://graph.microsoft.com/v1.0/$metadata#records"${next ? `,"@odata.nextLink":"${next}"` : ''},"value":[${items.join(',')}]}`);
}

describe('records of the audit search', () => {
  it('delivers auditData as the bytes Graph sent, less its @odata annotation: the record as the Management Activity API carries it', () => {
    const item = `{"id":"6c0e3a1e-0000-4000-8000-000000000001","createdDateTime":"2026-11-20T08:00:00Z","auditLogRecordType":"sharePointFileOperation","service":"SharePoint","auditData":${annotated},"clientIp":"203.0.113.7"}`;
    const { records, rejected } = searchRecordsOf(graphPage(page([item], 'https://graph.microsoft.com/next'), 'records'));
    expect(rejected).toEqual([]);
    expect(records).toHaveLength(1);
    expect(records[0]!.bytes.toString()).toBe(recordText);
    expect(records[0]).toMatchObject({ id: '6c0e3a1e-0000-4000-8000-000000000001', creationTime: '2026-11-20T08:00:00', service: 'SharePoint', recordType: 'sharePointFileOperation' });
  });

  it('keeps an auditData without annotations untouched, and cuts annotations anywhere else', () => {
    const plain = Buffer.from(recordText);
    expect(withoutAnnotations(plain)).toBe(plain);
    expect(withoutAnnotations(Buffer.from('{"a":1,"@odata.type":"#x","b":{"@odata.type":"kept inside"}}')).toString()).toBe('{"a":1,"b":{"@odata.type":"kept inside"}}');
    expect(withoutAnnotations(Buffer.from('{"@odata.type":"#x"}')).toString()).toBe('{}');
  });

  it('sets aside an item without an auditData object or without a string Id', () => {
    const { records, rejected } = searchRecordsOf(graphPage(page(['{"id":"a","auditData":"text"}', '{"id":"b","auditData":{"Id":7}}', '{"id":"c"}']), 'records'));
    expect(records).toEqual([]);
    expect(rejected.map((element) => element.index)).toEqual([0, 1, 2]);
  });

  it('files each record under the content type the Management Activity API would, and asks each content type\'s query for its own', () => {
    expect(contentTypeOfSearchRecord('Exchange', 'complianceDLPExchange')).toBe('DLP.All');
    expect(contentTypeOfSearchRecord('Exchange', 'exchangeItem')).toBe('Audit.Exchange');
    expect(contentTypeOfSearchRecord('OneDrive', 'sharePointFileOperation')).toBe('Audit.SharePoint');
    expect(contentTypeOfSearchRecord('azureactivedirectory', 'azureActiveDirectoryStsLogon')).toBe('Audit.AzureActiveDirectory');
    expect(contentTypeOfSearchRecord('MicrosoftTeams', 'microsoftTeams')).toBe('Audit.General');
    expect(contentTypeOfSearchRecord(undefined, undefined)).toBe('Audit.General');
    expect(queryFiltersOf('Audit.SharePoint')).toEqual({ serviceFilters: ['SharePoint', 'OneDrive'] });
    expect(queryFiltersOf('DLP.All').recordTypeFilters).toContain('complianceDLPExchange');
    expect(queryFiltersOf('Audit.General')).toEqual({});
  });
});
