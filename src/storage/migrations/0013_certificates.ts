// duplicate-ok-file: a migration is frozen history that states its tables in full; it is never rewritten to share code.
import type { Migration } from '../port.js';

/**
 * Key Vault certificates: certificates, certificate versions, policies and pending operations.
 *
 * Mirrors the secrets and keys tables (0004, 0007): listing pages by keyset on
 * (vault_id, name_lower), the latest version is one primary-key lookup through
 * `certificates.current_version`, versions page by (created_at, version), the purge job
 * finds due rows by index. A version keeps its X.509 certificate (DER, public) and
 * SHA-1 thumbprint; its private key is the Key Vault key of the same name and version,
 * its PFX/PEM the secret of the same name and version (as Azure exposes them), both
 * sealed in their own tables. A certificate has one policy (JSON, the wire shape) and at
 * most one pending operation (JSON). Purging a vault cascades to its certificates.
 */
export const m0013: Migration = {
  version: 13,
  name: 'certificates',
  sql: `
CREATE TABLE certificates (
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
CREATE INDEX certificates_purge ON certificates (scheduled_purge_at) WHERE scheduled_purge_at IS NOT NULL;
CREATE TABLE certificate_versions (
  vault_id TEXT NOT NULL,
  name_lower TEXT NOT NULL,
  version TEXT NOT NULL,
  cer {{blob}} NOT NULL,
  x5t TEXT NOT NULL,
  tags TEXT,
  enabled INTEGER NOT NULL,
  nbf BIGINT,
  exp BIGINT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (vault_id, name_lower, version),
  FOREIGN KEY (vault_id, name_lower) REFERENCES certificates (vault_id, name_lower) ON DELETE CASCADE
);
CREATE INDEX certificate_versions_created ON certificate_versions (vault_id, name_lower, created_at, version);
CREATE TABLE certificate_policies (
  vault_id TEXT NOT NULL,
  name_lower TEXT NOT NULL,
  policy TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (vault_id, name_lower),
  FOREIGN KEY (vault_id, name_lower) REFERENCES certificates (vault_id, name_lower) ON DELETE CASCADE
);
CREATE TABLE certificate_operations (
  vault_id TEXT NOT NULL,
  name_lower TEXT NOT NULL,
  operation TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (vault_id, name_lower),
  FOREIGN KEY (vault_id, name_lower) REFERENCES certificates (vault_id, name_lower) ON DELETE CASCADE
);
`,
};
