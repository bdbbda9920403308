// duplicate-ok-file: a migration is frozen history that states its tables in full; it is never rewritten to share code.
import type { Migration } from '../port.js';

/**
 * A role assignment's name (the GUID its creator picks, as in Azure) is unique per tenant, not
 * in the installation. Before, a PUT with a name another tenant used was 409 where a new name
 * was 201: a caller who knew another tenant's assignment GUID learned that it existed
 * (docs/security.md). The key is now (tenant_id, id); every lookup by id already names the tenant.
 *
 * SQLite: the table is rebuilt inside the migration's transaction, with its indexes.
 * PostgreSQL: the primary key is replaced.
 */
export const m0023: Migration = {
  version: 23,
  name: 'role_assignment_names_per_tenant',
  sql: `
CREATE TABLE role_assignments_0023 (
  id TEXT NOT NULL,
  tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  principal_id TEXT NOT NULL REFERENCES principals(id) ON DELETE CASCADE,
  role_id TEXT NOT NULL,
  scope TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  created_by TEXT,
  PRIMARY KEY (tenant_id, id)
);
INSERT INTO role_assignments_0023 (id, tenant_id, principal_id, role_id, scope, created_at, created_by)
  SELECT id, tenant_id, principal_id, role_id, scope, created_at, created_by FROM role_assignments;
DROP TABLE role_assignments;
ALTER TABLE role_assignments_0023 RENAME TO role_assignments;
CREATE INDEX role_assignments_principal ON role_assignments (principal_id);
CREATE INDEX role_assignments_scope ON role_assignments (tenant_id, scope);
CREATE UNIQUE INDEX role_assignments_unique ON role_assignments (principal_id, role_id, scope);
`,
  postgresSql: `
ALTER TABLE role_assignments DROP CONSTRAINT role_assignments_pkey;
ALTER TABLE role_assignments ADD PRIMARY KEY (tenant_id, id);
`,
};
