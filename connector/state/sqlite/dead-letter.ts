/**
 * The dead-letter file of a state directory, `dead-letter.ndjson`: elements of content blobs that are not audit
 * records (not a JSON object with a string Id), one JSON line each, appended and fsynced before the commit that
 * delivers their blob. A crash between the two appends them again on the next run (at least once, never lost).
 * Each line: `at`, `contentType`, `contentId`, `index` (in the blob's array), `reason`, and the element as `text`
 * (its exact bytes, which are UTF-8) or `base64` (when they are not). A state directory holding several tenants
 * (fleet mode) keeps one file per tenant, `dead-letter.<tenant>.ndjson`; the legacy tenant '' keeps the plain name.
 */
import { openSync, writeSync, fsyncSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import type { CollectedType } from '../../../contract/content-types.ts';
import type { SetAsideRecord } from '../../core/commit.ts';

export const deadLetterFileName = 'dead-letter.ndjson';

/** The dead-letter file of one tenant's records (`tenant` '' is the single tenant of before fleet mode). */
export function deadLetterFileNameOf(tenant: string): string {
  // A tenant id is a GUID; anything else is encoded so that it can never name another directory.
  return tenant === '' ? deadLetterFileName : `dead-letter.${encodeURIComponent(tenant)}.ndjson`;
}

/** Whether a file of a state directory is a dead-letter file (any tenant's). */
export function isDeadLetterFileName(name: string): boolean {
  return name === deadLetterFileName || /^dead-letter\.[^/]+\.ndjson$/.test(name);
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function element(bytes: Buffer): { text: string } | { base64: string } {
  try {
    return { text: strictUtf8.decode(bytes) };
  } catch {
    return { base64: bytes.toString('base64') };
  }
}

/** Appends `records` to the dead-letter file of `tenant` in `dir` and fsyncs it. */
export function appendDeadLetters(dir: string, tenant: string, contentType: CollectedType, at: string, records: readonly SetAsideRecord[]): void {
  const lines = records.map((r) => `${JSON.stringify({ at, contentType, contentId: r.contentId, index: r.index, reason: r.reason, ...element(r.bytes) })}\n`).join('');
  const fd = openSync(join(dir, deadLetterFileNameOf(tenant)), 'a', 0o600);
  try {
    const bytes = Buffer.from(lines, 'utf8');
    for (let written = 0; written < bytes.length;) written += writeSync(fd, bytes, written, bytes.length - written);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
