// duplicate-ok-file: a migration is frozen history that states its tables in full; it is never rewritten to share code.
import type { Migration } from '../port.js';

/**
 * Where the tenant CA issued each certificate (issue F3 of the CA review):
 * `certificate_ca_issuances` maps a certificate a CA generation signed (its serial) to the
 * certificate version it was issued into (vault id, certificate name, version). A purge revokes
 * a certificate only when the purged version is that one (the original): purging a copy
 * (imported or restored into another vault) revokes nothing. Certificates issued before this
 * migration have no row: any purge of them revokes, as before.
 */
export const m0021: Migration = {
  version: 21,
  name: 'certificate_ca_issuances',
  sql: `
CREATE TABLE certificate_ca_issuances (
  tenant_id TEXT NOT NULL,
  generation INTEGER NOT NULL,
  serial TEXT NOT NULL,
  vault_id TEXT NOT NULL,
  name_lower TEXT NOT NULL,
  version TEXT NOT NULL,
  PRIMARY KEY (tenant_id, generation, serial),
  FOREIGN KEY (tenant_id, generation) REFERENCES certificate_ca_generations (tenant_id, generation) ON DELETE CASCADE
);
`,
};
