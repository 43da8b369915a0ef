/**
 * SharePoint and OneDrive file operations and sharing (RecordType 6 SharePointFileOperation, 14
 * SharePointSharingOperation, and the same operations under other record types) → File Hosting Activity (6006).
 * The file is ObjectId (its full URL) with SourceFileName, SourceFileExtension, SourceRelativeUrl (the folder) and
 * ListItemUniqueId; a rename or move adds the destination as `file_result`; the site's host is the destination
 * endpoint. Members of Microsoft's SharePoint file operations and sharing schemas.
 */
import { classes, lookup, recordActor, sourceEndpoint, text, type AuditRecord, type Mapped } from './event.ts';

/** Operation → File Hosting activity_id (OCSF 1.8.0: 1 Upload … 16 Unsync). */
export const fileActivities: Readonly<Record<string, number>> = {
  FileUploaded: 1, FileSyncUploadedFull: 15, FileSyncUploadedPartial: 15,
  FileDownloaded: 2, FileSyncDownloadedFull: 15, FileSyncDownloadedPartial: 15,
  FileModified: 3, FileModifiedExtended: 3,
  FileDeleted: 4, FileDeletedFirstStageRecycleBin: 4, FileDeletedSecondStageRecycleBin: 4, FileRecycled: 4, FolderDeleted: 4, FolderRecycled: 4,
  FileRenamed: 5, FolderRenamed: 5,
  FileCopied: 6, FolderCopied: 6,
  FileMoved: 7, FolderMoved: 7,
  FileRestored: 8, FolderRestored: 8,
  FilePreviewed: 9,
  FileCheckedOut: 10, FileCheckedIn: 11, FileCheckOutDiscarded: 11,
  SharingSet: 12, AnonymousLinkCreated: 12, CompanyLinkCreated: 12, SecureLinkCreated: 12, SharingInvitationCreated: 12, AddedToSecureLink: 12, AnonymousLinkUpdated: 12, CompanyLinkUpdated: 12,
  SharingRevoked: 13, AnonymousLinkRemoved: 13, CompanyLinkRemoved: 13, SecureLinkDeleted: 13, RemovedFromSecureLink: 13, SharingInvitationRevoked: 13,
  FileAccessed: 14, FileAccessedExtended: 14, AnonymousLinkUsed: 14, CompanyLinkUsed: 14, SecureLinkUsed: 14, SharingInvitationAccepted: 14,
};

export function isFileOperation(record: AuditRecord): boolean {
  return typeof record['Operation'] === 'string' && Object.hasOwn(fileActivities, record['Operation']);
}

function lastSegment(path: string): string {
  const trimmed = path.replace(/\/+$/, '');
  return trimmed.slice(trimmed.lastIndexOf('/') + 1) || trimmed;
}

function fileOf(name: string | undefined, path: string | undefined, itemType: unknown): Record<string, unknown> | undefined {
  const fileName = name ?? (path !== undefined ? lastSegment(path) : undefined);
  if (fileName === undefined) return undefined;
  const named = text(itemType);
  const type = named === 'Folder' ? { type_id: 2, type: 'Folder' } : named === undefined || named === 'File' ? { type_id: 1, type: 'Regular File' } : { type_id: 99, type: named };
  return { name: fileName, ...type, ...(path !== undefined ? { path } : {}) };
}

export function mapFileOperation(record: AuditRecord): Mapped | undefined {
  const activityId = lookup(fileActivities, record['Operation']);
  if (activityId === undefined) return undefined;
  const objectId = text(record['ObjectId']);
  const file = fileOf(text(record['SourceFileName']), objectId, record['ItemType']);
  if (!file) return undefined;
  // An ItemType that is no text is read as a file and kept in `unmapped`.
  const consumed = ['UserId', 'UserKey', 'UserType', 'ClientIP', 'ObjectId', 'SourceFileName', ...(typeof record['ItemType'] === 'string' ? ['ItemType'] : [])];
  for (const [member, attribute] of [['SourceFileExtension', 'ext'], ['SourceRelativeUrl', 'parent_folder'], ['ListItemUniqueId', 'uid']] as const) {
    const value = text(record[member]);
    if (value !== undefined) { file[attribute] = value; consumed.push(member); }
  }
  const attributes: Record<string, unknown> = { actor: recordActor(record), src_endpoint: sourceEndpoint(record['ClientIP']), file };
  const userAgent = text(record['UserAgent']);
  if (userAgent !== undefined) { attributes['http_request'] = { user_agent: userAgent }; consumed.push('UserAgent'); }
  const site = text(record['SiteUrl']);
  const host = site !== undefined ? /^https?:\/\/([^/:?#]+)/i.exec(site)?.[1] : undefined;
  if (host !== undefined) attributes['dst_endpoint'] = { hostname: host };
  const destination = text(record['DestinationFileName']);
  if (destination !== undefined) {
    const destinationFolder = text(record['DestinationRelativeUrl']);
    attributes['file_result'] = { ...fileOf(destination, undefined, record['ItemType']), ...(destinationFolder !== undefined ? { parent_folder: destinationFolder } : {}) };
    consumed.push('DestinationFileName', ...(destinationFolder !== undefined ? ['DestinationRelativeUrl'] : []));
  }
  return { class: classes.fileHosting, activityId, attributes, consumed };
}
