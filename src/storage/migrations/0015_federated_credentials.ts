// duplicate-ok-file: a migration is frozen history that states its tables in full; it is never rewritten to share code.
import type { Migration } from '../port.js';

/**
 * Federated identity credentials on user-assigned identities
 * (`Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials`):
 * the identity trusts tokens of an external OIDC issuer for one subject and
 * audience, and exchanges them for its own (src/authority/federation.ts).
 * Deleting the identity deletes its credentials.
 */
export const m0015: Migration = {
  version: 15,
  name: 'federated_credentials',
  sql: `
CREATE TABLE federated_credentials (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  identity_id TEXT NOT NULL REFERENCES user_identities(id) ON DELETE CASCADE,
  principal_id TEXT NOT NULL REFERENCES principals(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  name_lower TEXT NOT NULL,
  issuer TEXT NOT NULL,
  subject TEXT NOT NULL,
  audiences TEXT NOT NULL,
  description TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX federated_credentials_name ON federated_credentials (identity_id, name_lower);
CREATE INDEX federated_credentials_principal ON federated_credentials (principal_id);
`,
};
