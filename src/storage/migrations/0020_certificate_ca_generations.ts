// duplicate-ok-file: a migration is frozen history that states its tables in full; it is never rewritten to share code.
import type { Migration } from '../port.js';

/**
 * The tenant CA's rotation and revocation (issue 20):
 *
 * - `certificate_ca_generations` replaces `certificate_authorities`: a tenant's CA is a series
 *   of generations (1, 2, …; the highest signs new certificates, the others stay published while
 *   the certificates they signed are valid). Each keeps its certificate (DER, public), its sealed
 *   key, when it was retired, the latest expiry of a certificate it signed (`issued_until`; a CA
 *   carried over from 0016 does not know it and keeps a far date, so it stays published until
 *   its own expiry), and its last CRL (DER, its number and `this_update`; NULL when a revocation
 *   made it stale). The existing CAs become generation 1.
 * - `certificate_ca_revocations`: the certificates a generation signed that are revoked (their
 *   serial, expiry, when and why), listed in its CRL until they expire.
 */
export const m0020: Migration = {
  version: 20,
  name: 'certificate_ca_generations',
  sql: `
CREATE TABLE certificate_ca_generations (
  tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  generation INTEGER NOT NULL,
  cer {{blob}} NOT NULL,
  sealed_key {{blob}} NOT NULL,
  created_at BIGINT NOT NULL,
  retired_at BIGINT,
  issued_until BIGINT NOT NULL,
  crl_number BIGINT NOT NULL,
  crl {{blob}},
  crl_this_update BIGINT,
  PRIMARY KEY (tenant_id, generation)
);
INSERT INTO certificate_ca_generations
  (tenant_id, generation, cer, sealed_key, created_at, retired_at, issued_until, crl_number, crl, crl_this_update)
  SELECT tenant_id, 1, cer, sealed_key, created_at, NULL, 253402300799000, 0, NULL, NULL FROM certificate_authorities;
DROP TABLE certificate_authorities;
CREATE TABLE certificate_ca_revocations (
  tenant_id TEXT NOT NULL,
  generation INTEGER NOT NULL,
  serial TEXT NOT NULL,
  not_after BIGINT NOT NULL,
  revoked_at BIGINT NOT NULL,
  reason TEXT NOT NULL,
  PRIMARY KEY (tenant_id, generation, serial),
  FOREIGN KEY (tenant_id, generation) REFERENCES certificate_ca_generations (tenant_id, generation) ON DELETE CASCADE
);
`,
};
