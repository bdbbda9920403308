// duplicate-ok-file: a migration is frozen history that states its tables in full; it is never rewritten to share code.
import type { Migration } from '../port.js';

/**
 * Key Vault keys: keys, key versions (private material sealed) and rotation policies.
 *
 * Mirrors the secrets tables (0004): listing pages by keyset on
 * (vault_id, name_lower), the latest version is one primary-key lookup through
 * `keys.current_version`, versions page by (created_at, version), the purge job
 * finds due rows by index. A version's public JWK is stored in clear (it is
 * public); the private JWK only sealed, bound by its AAD to tenant, vault,
 * name and version. `notified_version` remembers the version a near-expiry
 * notification was already emitted for. Purging a vault cascades to its keys.
 */
export const m0007: Migration = {
  version: 7,
  name: 'keys',
  sql: `
CREATE TABLE keys (
  vault_id TEXT NOT NULL REFERENCES vaults(id) ON DELETE CASCADE,
  name_lower TEXT NOT NULL,
  name TEXT NOT NULL,
  current_version TEXT NOT NULL,
  deleted_at BIGINT,
  scheduled_purge_at BIGINT,
  notified_version TEXT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (vault_id, name_lower)
);
CREATE INDEX keys_purge ON keys (scheduled_purge_at) WHERE scheduled_purge_at IS NOT NULL;
CREATE TABLE key_versions (
  vault_id TEXT NOT NULL,
  name_lower TEXT NOT NULL,
  version TEXT NOT NULL,
  kty TEXT NOT NULL,
  key_ops TEXT NOT NULL,
  public_jwk TEXT NOT NULL,
  private_sealed {{blob}} NOT NULL,
  tags TEXT,
  enabled INTEGER NOT NULL,
  nbf BIGINT,
  exp BIGINT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (vault_id, name_lower, version),
  FOREIGN KEY (vault_id, name_lower) REFERENCES keys (vault_id, name_lower) ON DELETE CASCADE
);
CREATE INDEX key_versions_created ON key_versions (vault_id, name_lower, created_at, version);
CREATE TABLE key_rotation_policies (
  vault_id TEXT NOT NULL,
  name_lower TEXT NOT NULL,
  policy TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (vault_id, name_lower),
  FOREIGN KEY (vault_id, name_lower) REFERENCES keys (vault_id, name_lower) ON DELETE CASCADE
);
`,
};
