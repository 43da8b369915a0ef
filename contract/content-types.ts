/** The Management Activity API's content types: what `subscriptions/*` and `content` calls name. */
export const contentTypes = [
  'Audit.AzureActiveDirectory',
  'Audit.Exchange',
  'Audit.SharePoint',
  'Audit.General',
  'DLP.All',
] as const;
export type ContentType = (typeof contentTypes)[number];

export function isContentType(value: string): value is ContentType {
  return (contentTypes as readonly string[]).includes(value);
}

/**
 * Service health and message-centre posts from Microsoft Graph (connector/sources/graph/): not a Management API content
 * type, but collected as one more unit beside them, through the same pipeline, store, sinks and status.
 */
export const serviceHealth = 'ServiceHealth';
export type ServiceHealth = typeof serviceHealth;

/** What one unit of collection collects: an audit content type, or ServiceHealth. `--content-types` takes any of them. */
export const collectedTypes = [...contentTypes, serviceHealth] as const;
export type CollectedType = (typeof collectedTypes)[number];

export function isCollectedType(value: string): value is CollectedType {
  return (collectedTypes as readonly string[]).includes(value);
}

/** The audit content types among `types` (the ones with Management API subscriptions). */
export function auditTypesOf(types: readonly CollectedType[]): ContentType[] {
  return types.filter((type): type is ContentType => type !== serviceHealth);
}
