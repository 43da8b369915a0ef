/**
 * The schema of `state.db`, versioned: `meta.schema_version` says which of the numbered migrations below ran,
 * and opening for a run applies the missing ones in one transaction. Migrations are append-only: a released one
 * is never edited, a change is a new entry.
 *
 * The data model carries over to PostgreSQL as is (postgres/schema.ts): plain tables keyed by tenant and content
 * type and by sink name, TEXT and BIGINT columns, ISO timestamps where a person reads them and epoch milliseconds where the store
 * compares them (ISO strings with different fractional digits do not sort as text). The one SQLite-only clause,
 * WITHOUT ROWID, is storage layout (the rows live in the primary key's b-tree, half the size); PostgreSQL's DDL
 * simply leaves it out.
 */
import type { DatabaseSync } from 'node:sqlite';
import type { CollectedType } from '../../../contract/content-types.ts';
import { ConnectorError } from '../../core/errors.ts';

/** The state database's file name in a state directory. */
export const stateDbName = 'state.db';

const migrations: readonly string[] = [
  // 1: the first SQLite schema (imports the JSON files of state version 2, see migrate-v2.ts).
  `
  CREATE TABLE cursors (
    content_type        TEXT PRIMARY KEY,
    checkpoint          TEXT,
    records_delivered   BIGINT NOT NULL DEFAULT 0,
    blobs_delivered     BIGINT NOT NULL DEFAULT 0,
    duplicates_dropped  BIGINT NOT NULL DEFAULT 0,
    expired_count       BIGINT NOT NULL DEFAULT 0,
    last_content_seen   TEXT,
    last_delivery_at    TEXT,
    last_error_code     TEXT,
    last_error_message  TEXT,
    last_error_at       TEXT,
    held_blobs          BIGINT NOT NULL DEFAULT 0,
    updated_at          TEXT
  );
  -- The latest expired blobs of each content type; seq is the blob's rank among all expired ones (1 = first ever).
  CREATE TABLE expired_blobs (
    content_type     TEXT NOT NULL,
    seq              BIGINT NOT NULL,
    content_id       TEXT NOT NULL,
    content_created  TEXT NOT NULL,
    detected_at      TEXT NOT NULL,
    PRIMARY KEY (content_type, seq)
  );
  CREATE TABLE delivered_blobs (
    content_type        TEXT NOT NULL,
    content_id          TEXT NOT NULL,
    content_created_ms  BIGINT NOT NULL,
    PRIMARY KEY (content_type, content_id)
  ) WITHOUT ROWID;
  CREATE INDEX delivered_blobs_by_created ON delivered_blobs (content_type, content_created_ms);
  -- Delivered records, keyed by time first (see RecordKey): a commit's records sit in one small region of the
  -- index, so commits cost the same at a million Ids as at a thousand. content_code: contentTypeCodes below.
  CREATE TABLE record_ids (
    content_code     SMALLINT NOT NULL,
    creation_second  BIGINT NOT NULL,
    id               TEXT NOT NULL,
    PRIMARY KEY (content_code, creation_second, id)
  ) WITHOUT ROWID;
  -- Ids imported from the previous release's state, which kept no CreationTime; forgotten by their blob's time.
  CREATE TABLE legacy_record_ids (
    content_type  TEXT NOT NULL,
    id            TEXT NOT NULL,
    seen_at_ms    BIGINT NOT NULL,
    PRIMARY KEY (content_type, id)
  ) WITHOUT ROWID;
  CREATE TABLE sink_positions (
    name      TEXT PRIMARY KEY,
    position  TEXT NOT NULL
  );
  `,
  // 2: sweeps over the retention: where the state's coverage begins, blobs found late, the last full sweep.
  `
  ALTER TABLE cursors ADD COLUMN covered_from TEXT;
  ALTER TABLE cursors ADD COLUMN late_blobs BIGINT NOT NULL DEFAULT 0;
  ALTER TABLE cursors ADD COLUMN max_lateness_ms BIGINT NOT NULL DEFAULT 0;
  ALTER TABLE cursors ADD COLUMN last_sweep_at TEXT;
  `,
  // 3: fleet mode, many tenants in one database. Every per-unit table is keyed by the tenant first; the rows of
  // before belong to tenant '' (the single tenant of a state directory, adopted by its tenant on its first run,
  // see sqlite/store.ts). record_ids holds a row per record, so it keys the tenant by a small code (tenants).
  // SQLite cannot change a primary key in place: each table is copied into its new form.
  `
  CREATE TABLE tenants (
    code    INTEGER PRIMARY KEY,
    tenant  TEXT NOT NULL UNIQUE
  );
  INSERT INTO tenants (code, tenant) VALUES (0, '');
  CREATE TABLE cursors_v3 (
    tenant              TEXT NOT NULL,
    content_type        TEXT NOT NULL,
    checkpoint          TEXT,
    records_delivered   BIGINT NOT NULL DEFAULT 0,
    blobs_delivered     BIGINT NOT NULL DEFAULT 0,
    duplicates_dropped  BIGINT NOT NULL DEFAULT 0,
    expired_count       BIGINT NOT NULL DEFAULT 0,
    last_content_seen   TEXT,
    last_delivery_at    TEXT,
    last_error_code     TEXT,
    last_error_message  TEXT,
    last_error_at       TEXT,
    held_blobs          BIGINT NOT NULL DEFAULT 0,
    updated_at          TEXT,
    covered_from        TEXT,
    late_blobs          BIGINT NOT NULL DEFAULT 0,
    max_lateness_ms     BIGINT NOT NULL DEFAULT 0,
    last_sweep_at       TEXT,
    PRIMARY KEY (tenant, content_type)
  );
  INSERT INTO cursors_v3 SELECT '', content_type, checkpoint, records_delivered, blobs_delivered, duplicates_dropped, expired_count,
    last_content_seen, last_delivery_at, last_error_code, last_error_message, last_error_at, held_blobs, updated_at,
    covered_from, late_blobs, max_lateness_ms, last_sweep_at FROM cursors;
  DROP TABLE cursors;
  ALTER TABLE cursors_v3 RENAME TO cursors;
  CREATE TABLE expired_blobs_v3 (
    tenant           TEXT NOT NULL,
    content_type     TEXT NOT NULL,
    seq              BIGINT NOT NULL,
    content_id       TEXT NOT NULL,
    content_created  TEXT NOT NULL,
    detected_at      TEXT NOT NULL,
    PRIMARY KEY (tenant, content_type, seq)
  );
  INSERT INTO expired_blobs_v3 SELECT '', content_type, seq, content_id, content_created, detected_at FROM expired_blobs;
  DROP TABLE expired_blobs;
  ALTER TABLE expired_blobs_v3 RENAME TO expired_blobs;
  CREATE TABLE delivered_blobs_v3 (
    tenant              TEXT NOT NULL,
    content_type        TEXT NOT NULL,
    content_id          TEXT NOT NULL,
    content_created_ms  BIGINT NOT NULL,
    PRIMARY KEY (tenant, content_type, content_id)
  ) WITHOUT ROWID;
  INSERT INTO delivered_blobs_v3 SELECT '', content_type, content_id, content_created_ms FROM delivered_blobs;
  DROP TABLE delivered_blobs;
  ALTER TABLE delivered_blobs_v3 RENAME TO delivered_blobs;
  CREATE INDEX delivered_blobs_by_created ON delivered_blobs (tenant, content_type, content_created_ms);
  CREATE TABLE record_ids_v3 (
    tenant_code      INTEGER NOT NULL,
    content_code     SMALLINT NOT NULL,
    creation_second  BIGINT NOT NULL,
    id               TEXT NOT NULL,
    PRIMARY KEY (tenant_code, content_code, creation_second, id)
  ) WITHOUT ROWID;
  INSERT INTO record_ids_v3 SELECT 0, content_code, creation_second, id FROM record_ids ORDER BY content_code, creation_second, id;
  DROP TABLE record_ids;
  ALTER TABLE record_ids_v3 RENAME TO record_ids;
  CREATE TABLE legacy_record_ids_v3 (
    tenant        TEXT NOT NULL,
    content_type  TEXT NOT NULL,
    id            TEXT NOT NULL,
    seen_at_ms    BIGINT NOT NULL,
    PRIMARY KEY (tenant, content_type, id)
  ) WITHOUT ROWID;
  INSERT INTO legacy_record_ids_v3 SELECT '', content_type, id, seen_at_ms FROM legacy_record_ids;
  DROP TABLE legacy_record_ids;
  ALTER TABLE legacy_record_ids_v3 RENAME TO legacy_record_ids;
  `,
  // 4: service health from Microsoft Graph (the ServiceHealth unit): the last sample of every service's health overview, as JSON.
  `
  ALTER TABLE cursors ADD COLUMN service_health TEXT;
  `,
  // 5: where the tenant's request rate stood at the unit's last commit (ApiRateSample as JSON), for status.
  `
  ALTER TABLE cursors ADD COLUMN api_rate TEXT;
  `,
  // 6: history beyond the API's 7 days, read from the audit search (HistoryState as JSON, core/history.ts).
  `
  ALTER TABLE cursors ADD COLUMN history TEXT;
  `,
];

export const currentSchemaVersion = migrations.length;

/** The tenant of the rows written before fleet mode (and of a state directory whose tenant has not run on it yet). */
export const legacyTenant = '';

/** The content type of a record_ids row, as a small number (the table has a row per delivered record). Append-only. */
export const contentTypeCodes: Readonly<Record<CollectedType, number>> = {
  'Audit.AzureActiveDirectory': 1,
  'Audit.Exchange': 2,
  'Audit.SharePoint': 3,
  'Audit.General': 4,
  'DLP.All': 5,
  ServiceHealth: 6,
};

/** 0 for a database this connector never wrote (new, or its first transaction not committed yet). */
export function schemaVersionOf(db: DatabaseSync, location: string): number {
  const table = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'meta'").get();
  if (!table) return 0;
  const row = db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get() as { value: string } | undefined;
  if (!row) throw schemaVersionMissing(location);
  return Number(row.value);
}

/** `meta` without its schema_version row: edited by hand or damaged; which migrations ran cannot be told. */
export function schemaVersionMissing(location: string): ConnectorError {
  return new ConnectorError('STATE_DAMAGED', `${location} has a meta table without its schema_version row (edited or damaged): which migrations ran cannot be told`, {
    fix: 'restore the state from a backup; or put the row back if you know the version (INSERT INTO meta (key, value) VALUES (\'schema_version\', \'<n>\')); or move the state aside to start over (records since --since are delivered again)',
  });
}

/** Refuses a database written by a newer connector, whose schema this one cannot know. */
export function assertKnownVersion(version: number, location: string): void {
  if (version > currentSchemaVersion) {
    throw new ConnectorError('STATE_VERSION', `${location} was written by a newer connector (state schema ${version}, this one knows up to ${currentSchemaVersion})`, { fix: 'run the newer connector version, or give this one its own --state directory' });
  }
}

/** Brings the schema to the current version in one transaction (the caller holds the directory lock). */
export function migrate(db: DatabaseSync, location: string): void {
  db.exec('BEGIN IMMEDIATE');
  try {
    const from = schemaVersionOf(db, location);
    assertKnownVersion(from, location);
    if (from === 0) db.exec('CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)');
    for (let version = from + 1; version <= currentSchemaVersion; version += 1) db.exec(migrations[version - 1]!);
    if (from < currentSchemaVersion) setMeta(db, 'schema_version', String(currentSchemaVersion));
    db.exec('COMMIT');
  } catch (error) {
    if (db.isTransaction) db.exec('ROLLBACK');
    throw error;
  }
}

export function getMeta(db: DatabaseSync, key: string): string | undefined {
  return (db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined)?.value;
}

export function setMeta(db: DatabaseSync, key: string, value: string): void {
  db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value);
}
