// duplicate-ok-file: a migration is frozen history that states its tables in full; it is never rewritten to share code.
import type { Migration } from '../port.js';

/**
 * Managed identities: hosts (where workloads run, each with its own host
 * principal), user-assigned identities, apps (`Microsoft.Web/sites`-like) with
 * their identity block, placement on a host and sealed app settings.
 */
export const m0005: Migration = {
  version: 5,
  name: 'identity',
  sql: `
CREATE TABLE hosts (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  subscription_id TEXT NOT NULL,
  resource_group TEXT NOT NULL,
  name TEXT NOT NULL,
  name_lower TEXT NOT NULL,
  principal_id TEXT NOT NULL REFERENCES principals(id),
  built_in INTEGER NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX hosts_name ON hosts (tenant_id, name_lower);
CREATE INDEX hosts_principal ON hosts (principal_id);
CREATE TABLE user_identities (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  subscription_id TEXT NOT NULL,
  resource_group TEXT NOT NULL,
  resource_group_lower TEXT NOT NULL,
  name TEXT NOT NULL,
  name_lower TEXT NOT NULL,
  principal_id TEXT NOT NULL REFERENCES principals(id) ON DELETE CASCADE,
  location TEXT NOT NULL,
  tags TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX user_identities_name ON user_identities (subscription_id, resource_group_lower, name_lower);
CREATE INDEX user_identities_principal ON user_identities (principal_id);
CREATE TABLE apps (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  subscription_id TEXT NOT NULL,
  resource_group TEXT NOT NULL,
  resource_group_lower TEXT NOT NULL,
  name TEXT NOT NULL,
  name_lower TEXT NOT NULL,
  host_id TEXT NOT NULL REFERENCES hosts(id),
  system_principal_id TEXT REFERENCES principals(id) ON DELETE SET NULL,
  kv_reference_identity TEXT,
  settings_sealed {{blob}},
  location TEXT NOT NULL,
  tags TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX apps_name ON apps (tenant_id, name_lower);
CREATE INDEX apps_host ON apps (host_id);
CREATE TABLE app_identities (
  app_id TEXT NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
  identity_id TEXT NOT NULL REFERENCES user_identities(id) ON DELETE CASCADE,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (app_id, identity_id)
);
CREATE INDEX app_identities_identity ON app_identities (identity_id);
`,
};
