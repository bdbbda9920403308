// duplicate-ok-file: a migration is frozen history that states its tables in full; it is never rewritten to share code.
import type { Migration } from '../port.js';

/**
 * Spent client assertions are kept in expiry order (issue 19; docs/performance.md, "Session 14").
 *
 * Before, `used_assertions` was keyed by `jti_hash` alone, a SHA-256: every recorded assertion
 * went into a random leaf of that index (and SQLite also kept a rowid table and an expiry index),
 * so a group commit of 30 assertions wrote about 60 pages to the log and again at the checkpoint.
 * Now the key is (expires_at, jti_hash): assertions arrive in nearly the order of their expiry, so
 * a batch appends to the same few pages, and the expiry prune is a range of the key (the separate
 * expiry index goes).
 *
 * What the key refuses: the same assertion again (its `exp`, which its signature covers, gives the
 * same expires_at; with the same client, jti and resource, the same jti_hash). A captured
 * assertion cannot be replayed. A new assertion that reuses a jti with another `exp` is accepted:
 * only the certificate's key holder can sign one, and they could as well pick a new jti
 * (docs/authority.md). Rows recorded before this migration keep their keys as the new code
 * computes them, so a replay across the upgrade is still refused: earlier versions stored
 * (exp + 300) × 1000 unrounded, which SQLite kept as a REAL when `exp` had a fraction below a ms;
 * such a value is rounded up here, as `expiresAtOf` rounds it (PostgreSQL's BIGINT never held one).
 *
 * SQLite: a WITHOUT ROWID table (the key is the row), rebuilt inside the migration's transaction.
 * PostgreSQL: the primary key is replaced and the expiry index dropped.
 */
export const m0022: Migration = {
  version: 22,
  name: 'used_assertions_by_expiry',
  sql: `
CREATE TABLE used_assertions_0022 (
  expires_at BIGINT NOT NULL,
  jti_hash TEXT NOT NULL,
  PRIMARY KEY (expires_at, jti_hash)
) WITHOUT ROWID;
INSERT INTO used_assertions_0022 (expires_at, jti_hash)
  SELECT CASE WHEN expires_at = CAST(expires_at AS INTEGER) THEN CAST(expires_at AS INTEGER)
              ELSE CAST(expires_at AS INTEGER) + 1 END, jti_hash
  FROM used_assertions;
DROP TABLE used_assertions;
ALTER TABLE used_assertions_0022 RENAME TO used_assertions;
`,
  postgresSql: `
ALTER TABLE used_assertions DROP CONSTRAINT used_assertions_pkey;
ALTER TABLE used_assertions ADD PRIMARY KEY (expires_at, jti_hash);
DROP INDEX used_assertions_expiry;
`,
};
