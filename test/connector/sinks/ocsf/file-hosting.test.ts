import { describe, expect, it } from 'vitest';
import { fileActivities } from '../../../../connector/sinks/ocsf/file-hosting.ts';
import { fileDownload, mapValid, schema } from './records.ts';

describe('SharePoint and OneDrive file operations → File Hosting Activity (6006)', () => {
  it('maps a file download field by field', () => {
    const { event, mapping, problems } = mapValid(fileDownload, 'Audit.SharePoint');
    expect(problems).toEqual([]);
    expect(mapping).toMatchObject({ family: 'file-hosting', classUid: 6006 });
    expect(event).toMatchObject({
      class_uid: 6006, class_name: 'File Hosting Activity', category_uid: 6, activity_id: 2, activity_name: 'Download', type_uid: 600602,
      time: Date.parse('2026-03-02T09:01:10Z'),
      actor: { user: { name: 'megan.bowen@contoso.onmicrosoft.com', uid: 'i:0h.f|membership|10032001a1b2c3d4@live.com', type_id: 1 } },
      src_endpoint: { ip: '203.0.113.24' }, dst_endpoint: { hostname: 'contoso.sharepoint.com' },
      file: { name: 'Q3 forecast.xlsx', ext: 'xlsx', type_id: 1, type: 'Regular File', parent_folder: 'Shared Documents', uid: '4803608a-df7d-4f63-aa73-67aa33bb576e', path: 'https://contoso.sharepoint.com/sites/finance/Shared Documents/Q3 forecast.xlsx' },
      http_request: { user_agent: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) Safari/605.1.15' },
      metadata: { uid: '3c9b1d2e-4f5a-4b6c-9d7e-8f9a0b1c2d3e', product: { feature: { name: 'SharePoint' } } },
    });
    expect(Object.keys(event['unmapped']).sort()).toEqual(['CorrelationId', 'EventSource', 'ListId', 'RecordType', 'Site', 'SiteUrl', 'Version', 'WebId']);
  });

  it('uses only activity ids File Hosting Activity has, and maps a rename with its result', () => {
    const activities = schema.class('file_hosting').attributes.get('activity_id')!.enum!;
    for (const [operation, id] of Object.entries(fileActivities)) expect(activities[String(id)], operation).toBeDefined();
    const renamed = fileDownload.replace('"FileDownloaded"', '"FileRenamed"').replace(/}$/, ',"DestinationFileName":"Q3 forecast v2.xlsx","DestinationRelativeUrl":"Shared Documents/Archive"}');
    const { event, problems } = mapValid(renamed);
    expect(problems).toEqual([]);
    expect(event).toMatchObject({ activity_id: 5, file_result: { name: 'Q3 forecast v2.xlsx', parent_folder: 'Shared Documents/Archive' } });
  });
});
