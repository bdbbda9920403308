// duplicate-ok-file: a migration is frozen history that states its tables in full; it is never rewritten to share code.
import type { Migration } from '../port.js';

/**
 * Certificate issuance beyond `Self` (issue 20):
 *
 * - `certificate_requests`: a certificate waiting for a merge (issuer `Unknown`): its policy,
 *   the CSR (DER, public) and the private key made for it (sealed; AAD binds it to the row's
 *   vault, name and request id). At most one per certificate name; a merge turns it into a
 *   certificate version and deletes it. Not tied to `certificates` (a first version has no
 *   certificate row yet); purging the vault removes it.
 * - `certificate_authorities`: each tenant's own CA (issuer provider `Latchkey`): its
 *   self-signed certificate (DER, public) and its private key (sealed, never served).
 * - `certificate_issuers`: a vault's issuers (Azure's `/certificates/issuers/{name}`): the
 *   provider, the non-secret parts (account id, organization details, JSON) and `enabled`.
 *   Bounded per vault by the domain; purging the vault removes them.
 * - `certificate_lifetime_events`: the lifetime actions already carried out for a certificate
 *   version (`EmailContacts`: the near-expiry event is recorded once per version); goes with
 *   the certificate.
 */
export const m0016: Migration = {
  version: 16,
  name: 'certificate_issuance',
  sql: `
CREATE TABLE certificate_requests (
  vault_id TEXT NOT NULL REFERENCES vaults(id) ON DELETE CASCADE,
  name_lower TEXT NOT NULL,
  name TEXT NOT NULL,
  request_id TEXT NOT NULL,
  policy TEXT NOT NULL,
  csr {{blob}} NOT NULL,
  sealed_key {{blob}} NOT NULL,
  operation TEXT NOT NULL,
  enabled INTEGER NOT NULL,
  tags TEXT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (vault_id, name_lower)
);
CREATE TABLE certificate_issuers (
  vault_id TEXT NOT NULL REFERENCES vaults(id) ON DELETE CASCADE,
  name_lower TEXT NOT NULL,
  name TEXT NOT NULL,
  provider TEXT NOT NULL,
  doc TEXT NOT NULL,
  enabled INTEGER NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (vault_id, name_lower)
);
CREATE TABLE certificate_lifetime_events (
  vault_id TEXT NOT NULL,
  name_lower TEXT NOT NULL,
  version TEXT NOT NULL,
  action TEXT NOT NULL,
  done_at BIGINT NOT NULL,
  PRIMARY KEY (vault_id, name_lower, version, action),
  FOREIGN KEY (vault_id, name_lower) REFERENCES certificates (vault_id, name_lower) ON DELETE CASCADE
);
CREATE TABLE certificate_authorities (
  tenant_id TEXT NOT NULL PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
  cer {{blob}} NOT NULL,
  sealed_key {{blob}} NOT NULL,
  created_at BIGINT NOT NULL
);
`,
};
