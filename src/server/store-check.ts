import { createAuditLog } from '../audit/log.js';
import { createSealer } from '../crypto/envelope.js';
import type { RootKey } from '../crypto/root-key.js';
import { systemClock } from '../lib/clock.js';
import { dataKeyStore } from '../storage/crypto/data-key-store.js';
import { ALL_MIGRATIONS } from '../storage/migrations/index.js';
import type { Database } from '../storage/port.js';
import { installationStore } from '../storage/server/installation-store.js';

/** The newest schema this build knows (the highest migration version). */
export const KNOWN_SCHEMA_VERSION = Math.max(...ALL_MIGRATIONS.map((m) => m.version));

export interface StoreCheck {
  ok: boolean;
  /** What stops this store from being served with this root key (empty when ok). */
  problems: string[];
  /** Highest applied migration (0 when none). */
  schemaVersion: number;
  /** The newest schema this build knows; an older store is migrated forward when a server starts. */
  knownSchemaVersion: number;
  /** The check value recorded in the store (null before its first server start). */
  rootKeyCheck: string | null;
  /** The check value of the root key given. */
  givenRootKeyCheck: string;
  auditEvents: number;
  /** The sealed audit chain head, when the chain verifies and is not empty. */
  auditHead: { seq: number; hash: string } | null;
}

/**
 * Whether a store (a restored backup, or a database `pg_restore` filled) can be
 * served with `rootKey`: its schema is not newer than this build, it was made
 * with this root key (check value, then the data keys unwrap), and its audit
 * chain verifies up to its sealed head. Reads only: safe on a read-only
 * connection and on a store a server is serving.
 */
export async function checkStore(db: Database, rootKey: RootKey): Promise<StoreCheck> {
  const problems: string[] = [];
  const given = rootKey.checkValue();
  const versions = await installationStore.schemaVersions(db);
  const schemaVersion = versions.length ? Math.max(...versions) : 0;
  const known = new Set(ALL_MIGRATIONS.map((m) => m.version));
  const unknown = versions.filter((v) => !known.has(v));
  if (unknown.length)
    problems.push(
      `the store has schema version ${schemaVersion}, newer than this Latchkey knows (${KNOWN_SCHEMA_VERSION}): use the Latchkey version that made it`,
    );
  const stored = (await installationStore.rootKeyCheck(db)) ?? null;
  const base = {
    schemaVersion,
    knownSchemaVersion: KNOWN_SCHEMA_VERSION,
    rootKeyCheck: stored,
    givenRootKeyCheck: given,
  };
  if (stored !== null && stored !== given) {
    problems.push(
      `the store needs the root key with check value ${stored}; the root key given has ${given} (latchkey root-key check-value shows a key's)`,
    );
    // Nothing below can be read with the wrong key.
    return { ok: false, problems, ...base, auditEvents: 0, auditHead: null };
  }
  const dataKeys = dataKeyStore(db);
  if ((await dataKeys.list()).some((k) => k.active)) {
    try {
      await createSealer(dataKeys, rootKey); // unwraps every data key; writes nothing when one is active
    } catch (e) {
      problems.push((e as Error).message);
    }
  }
  const audit = createAuditLog({
    db,
    clock: systemClock,
    macKey: rootKey.derive('audit-mac'),
    headKey: rootKey.derive('audit-head'),
  });
  const v = await audit.verify();
  if (!v.ok) problems.push(`the audit chain does not verify: ${v.reason} (event ${v.brokenAt})`);
  return {
    ok: problems.length === 0,
    problems,
    ...base,
    auditEvents: v.count,
    auditHead: v.ok ? v.head : null,
  };
}

/**
 * What a server's first start does to a store older than migration 0012: seals
 * its audit chain head with the root key (src/audit/log.ts). Restore runs it on
 * the migrated copy, so an older backup's chain verifies before it is installed.
 * Returns the head it sealed, if any.
 */
export async function sealPendingAuditHead(
  db: Database,
  rootKey: RootKey,
): Promise<{ seq: number; hash: string } | undefined> {
  return createAuditLog({
    db,
    clock: systemClock,
    macKey: rootKey.derive('audit-mac'),
    headKey: rootKey.derive('audit-head'),
  }).sealLegacyHead();
}
