// duplicate-ok-file: a migration is frozen history that states its tables in full; it is never rewritten to share code.
import type { Migration } from '../port.js';

/**
 * Key vaults, secrets and secret versions.
 *
 * Sized for 100,000 secrets per vault: listing pages by keyset on
 * (vault_id, name_lower) (the primary key), the latest version is one
 * primary-key lookup through `secrets.current_version`, versions page by
 * (created_at, version), and the purge job finds due rows by index.
 * Vault names are unique per installation (case-insensitive), soft-deleted
 * vaults included: a deleted vault holds its name until it is purged.
 */
export const m0004: Migration = {
  version: 4,
  name: 'vault',
  sql: `
CREATE TABLE vaults (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  name_lower TEXT NOT NULL,
  tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  subscription_id TEXT NOT NULL REFERENCES subscriptions(id) ON DELETE CASCADE,
  resource_group TEXT NOT NULL,
  location TEXT NOT NULL,
  sku TEXT NOT NULL,
  enable_rbac_authorization INTEGER NOT NULL,
  soft_delete_retention_days INTEGER NOT NULL,
  enable_purge_protection INTEGER NOT NULL,
  access_policies TEXT NOT NULL,
  tags TEXT NOT NULL,
  deleted_at BIGINT,
  scheduled_purge_at BIGINT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX vaults_name ON vaults (name_lower);
CREATE INDEX vaults_subscription ON vaults (tenant_id, subscription_id);
CREATE INDEX vaults_purge ON vaults (scheduled_purge_at);
CREATE TABLE secrets (
  vault_id TEXT NOT NULL REFERENCES vaults(id) ON DELETE CASCADE,
  name_lower TEXT NOT NULL,
  name TEXT NOT NULL,
  current_version TEXT NOT NULL,
  deleted_at BIGINT,
  scheduled_purge_at BIGINT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (vault_id, name_lower)
);
CREATE INDEX secrets_deleted ON secrets (vault_id, name_lower) WHERE deleted_at IS NOT NULL;
CREATE INDEX secrets_purge ON secrets (scheduled_purge_at) WHERE scheduled_purge_at IS NOT NULL;
CREATE TABLE secret_versions (
  vault_id TEXT NOT NULL,
  name_lower TEXT NOT NULL,
  version TEXT NOT NULL,
  value_sealed {{blob}} NOT NULL,
  content_type TEXT,
  tags TEXT,
  enabled INTEGER NOT NULL,
  nbf BIGINT,
  exp BIGINT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (vault_id, name_lower, version),
  FOREIGN KEY (vault_id, name_lower) REFERENCES secrets (vault_id, name_lower) ON DELETE CASCADE
);
CREATE INDEX secret_versions_created ON secret_versions (vault_id, name_lower, created_at, version);
`,
};
