// duplicate-ok-file: a migration is frozen history that states its tables in full; it is never rewritten to share code.
import type { Migration } from '../port.js';

/** Subscriptions, resource groups (ARM scopes) and role assignments. */
export const m0003: Migration = {
  version: 3,
  name: 'access',
  sql: `
CREATE TABLE subscriptions (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  display_name TEXT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE INDEX subscriptions_tenant ON subscriptions (tenant_id);
CREATE TABLE resource_groups (
  subscription_id TEXT NOT NULL REFERENCES subscriptions(id) ON DELETE CASCADE,
  name_lower TEXT NOT NULL,
  name TEXT NOT NULL,
  tenant_id TEXT NOT NULL,
  location TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (subscription_id, name_lower)
);
CREATE TABLE role_assignments (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  principal_id TEXT NOT NULL REFERENCES principals(id) ON DELETE CASCADE,
  role_id TEXT NOT NULL,
  scope TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  created_by TEXT
);
CREATE INDEX role_assignments_principal ON role_assignments (principal_id);
CREATE INDEX role_assignments_scope ON role_assignments (tenant_id, scope);
CREATE UNIQUE INDEX role_assignments_unique ON role_assignments (principal_id, role_id, scope);
`,
};
