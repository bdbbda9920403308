import type { Migration } from '../port.js';

/** Append-only, hash-chained audit log (see src/audit). */
export const m0002: Migration = {
  version: 2,
  name: 'audit',
  sql: `
CREATE TABLE audit_events (
  seq BIGINT PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
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
CREATE INDEX audit_events_tenant_time ON audit_events (tenant_id, time);
CREATE INDEX audit_events_vault ON audit_events (vault, seq);
CREATE INDEX audit_events_caller ON audit_events (caller_oid, seq);
`,
};
