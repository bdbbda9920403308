// duplicate-ok-file: a migration is frozen history that states its tables in full; it is never rewritten to share code.
import type { Migration } from '../port.js';

/**
 * Key Vault certificate contacts (`/certificates/contacts`): one list per vault, JSON in
 * the wire shape (`[{email, name?, phone?}]`). Purging the vault cascades to it.
 */
export const m0018: Migration = {
  version: 18,
  name: 'certificate_contacts',
  sql: `
CREATE TABLE certificate_contacts (
  vault_id TEXT PRIMARY KEY REFERENCES vaults(id) ON DELETE CASCADE,
  contacts TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
`,
};
