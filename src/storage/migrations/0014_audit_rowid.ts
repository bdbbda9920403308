// duplicate-ok-file: a migration is frozen history that states its tables in full; it is never rewritten to share code.
import type { Migration } from '../port.js';

const COLUMNS =
  'seq, id, time, tenant_id, caller_oid, caller_app_id, caller_kind, provisioning_key_id, operation, target, vault, status, client_ip, request_id, details, prev_hash, hash';

/**
 * Audit inserts stop scattering (issue 19; bench/audit-insert.ts has the figures, docs/performance.md
 * the table).
 *
 * SQLite: `seq BIGINT PRIMARY KEY` is not a rowid alias, so every row went into the table's rowid
 * b-tree and a second b-tree on seq. The table is rebuilt with `seq INTEGER PRIMARY KEY` (the rowid
 * itself) — create, copy in seq order, drop, rename, recreate the indexes — inside the migration's
 * transaction. Every column keeps its value, so the hash chain (which covers seq, id and the rest)
 * verifies as before.
 *
 * Both dialects: the `UNIQUE` index on the random UUIDv4 `id` is dropped. Nothing looks an event up
 * by id (readers page by seq, tenant, vault and caller), so the index only cost a random b-tree
 * insert per event; ids stay random v4 (122 random bits) and stay covered by the chain's MAC.
 * Time-ordered ids (UUIDv7) would keep the index without the scatter, but still pay an index insert
 * per row for a lookup nobody makes.
 */
export const m0014: Migration = {
  version: 14,
  name: 'audit_rowid',
  sql: `
CREATE TABLE audit_events_0014 (
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL,
  time BIGINT NOT NULL,
  tenant_id TEXT,
  caller_oid TEXT,
  caller_app_id TEXT,
  caller_kind TEXT,
  provisioning_key_id TEXT,
  operation TEXT NOT NULL,
  target TEXT,
  vault TEXT,
  status INTEGER NOT NULL,
  client_ip TEXT,
  request_id TEXT,
  details TEXT,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL
);
INSERT INTO audit_events_0014 (${COLUMNS}) SELECT ${COLUMNS} FROM audit_events ORDER BY seq;
DROP TABLE audit_events;
ALTER TABLE audit_events_0014 RENAME TO audit_events;
CREATE INDEX audit_events_tenant_time ON audit_events (tenant_id, time);
CREATE INDEX audit_events_vault ON audit_events (vault, seq);
CREATE INDEX audit_events_caller ON audit_events (caller_oid, seq);
`,
  postgresSql: `
ALTER TABLE audit_events DROP CONSTRAINT IF EXISTS audit_events_id_key;
`,
};
