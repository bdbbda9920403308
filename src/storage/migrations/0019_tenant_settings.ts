// duplicate-ok-file: a migration is frozen history that states its tables in full; it is never rewritten to share code.
import type { Migration } from '../port.js';

/**
 * Latchkey-specific settings of a tenant, one row per tenant that has any. `federation_issuers`
 * is the tenant's own allow-list of external OIDC issuers (a JSON array of issuer URLs) that
 * narrows the server's `federation.allowedIssuers`; NULL means the tenant follows the server's
 * list as it is (docs/federation.md, "Per-tenant issuer allow-list").
 */
export const m0019: Migration = {
  version: 19,
  name: 'tenant_settings',
  sql: `
CREATE TABLE tenant_settings (
  tenant_id TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
  federation_issuers TEXT,
  updated_at BIGINT NOT NULL
);
`,
};
