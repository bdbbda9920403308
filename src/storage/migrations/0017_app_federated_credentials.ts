// duplicate-ok-file: a migration is frozen history that states its tables in full; it is never rewritten to share code.
import type { Migration } from '../port.js';

/**
 * Federated identity credentials on application registrations (Graph
 * `applications/{id}/federatedIdentityCredentials`): as migration 0015's for user-assigned
 * identities, but owned by the application's principal (an application and its service principal
 * are one principal in Latchkey). Deleting the application deletes its credentials.
 */
export const m0017: Migration = {
  version: 17,
  name: 'app_federated_credentials',
  sql: `
CREATE TABLE app_federated_credentials (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
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
CREATE UNIQUE INDEX app_federated_credentials_name ON app_federated_credentials (principal_id, name_lower);
`,
};
