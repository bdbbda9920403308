import type { Migration } from '../port.js';

/** Provisioning keys: tenant-bound, scoped, expiring, revocable bootstrap credentials (stored hashed). */
export const m0006: Migration = {
  version: 6,
  name: 'provisioning',
  sql: `
CREATE TABLE provisioning_keys (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  display_name TEXT NOT NULL,
  scopes TEXT NOT NULL,
  key_hash {{blob}} NOT NULL,
  expires_at BIGINT NOT NULL,
  max_uses INTEGER,
  uses INTEGER NOT NULL DEFAULT 0,
  allowed_cidrs TEXT,
  resource_group TEXT,
  state TEXT NOT NULL,
  grace_until BIGINT,
  successor_id TEXT,
  predecessor_id TEXT,
  created_at BIGINT NOT NULL,
  created_by TEXT,
  revoked_at BIGINT,
  last_used_at BIGINT,
  expiry_audited INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX provisioning_keys_tenant ON provisioning_keys (tenant_id, created_at);
CREATE INDEX provisioning_keys_expiry ON provisioning_keys (expiry_audited, expires_at);
`,
};
