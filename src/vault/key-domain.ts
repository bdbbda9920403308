import type { Access } from '../access/decision.js';
import type { AuditLog } from '../audit/log.js';
import type { Sealer } from '../crypto/envelope.js';
import type { Jobs } from '../jobs/runner.js';
import type { CacheStats } from '../lib/cache-stats.js';
import type { Clock } from '../lib/clock.js';
import type { ChangeBus } from '../lib/events.js';
import type { Database } from '../storage/port.js';
import { createKeyBackups } from './key-backup.js';
import { createKeyCache } from './key-cache.js';
import { createKeyGuard } from './key-guard.js';
import { keyPurgeJob, keyRotationJob } from './key-jobs.js';
import { createKeyOperations } from './key-operations.js';
import { createKeyPolicies } from './key-policies.js';
import { createKeyRecordCache, parseKeyChangeId } from './key-record-cache.js';
import { createKeySealing } from './key-sealing.js';
import { createKeys } from './keys.js';
import { notifyingWrites } from './object-guard.js';

/**
 * The keys part of the vault data plane, wired together: lifecycle
 * (`keys`), backup and restore (`keyBackups`), crypto operations and random bytes (`keyOperations`), rotation
 * policies (`keyPolicies`), and their background jobs (rotation, purge).
 * Every change to a key, through the guard or by a job, drops its cached
 * versions (`records`, ./key-record-cache.ts) here and, over `bus`, on every node.
 */
export function createKeyDomain(deps: {
  db: Database;
  clock: Clock;
  sealer: Sealer;
  access: Access;
  audit: AuditLog;
  jobs: Pick<Jobs, 'add'>;
  baseUrlOf: (vaultNameLower: string) => string;
  onAuditError?: (e: unknown) => void;
  /** Invalidates the key-version cache on other nodes (and hears theirs). */
  bus?: ChangeBus;
  cacheStats?: CacheStats;
}) {
  const { db, clock, sealer, audit, baseUrlOf } = deps;
  const records = createKeyRecordCache({
    clock,
    inTransaction: () => db.current() !== undefined,
    ...(deps.bus ? { bus: deps.bus } : {}),
    ...(deps.cacheStats ? { stats: deps.cacheStats } : {}),
  });
  const changed = records.changed;
  const baseGuard = createKeyGuard({
    db,
    access: deps.access,
    audit,
    ...(deps.onAuditError ? { onAuditError: deps.onAuditError } : {}),
  });
  const guard = notifyingWrites(baseGuard, changed);
  const cache = createKeyCache();
  // Parsed private keys leave memory with their key, on every node: any change to a key (its
  // purge included) drops them here and, relayed, on the others; a vault change (its purge) or a
  // resync drops them all. The next operation unseals the key again.
  deps.bus?.subscribe('key', (id) => {
    const key = parseKeyChangeId(id);
    if (key) cache.evict(key.vaultId, key.nameLower);
  });
  deps.bus?.subscribe('vault', () => cache.clear());
  deps.bus?.onResync(() => cache.clear());
  const sealing = createKeySealing(sealer);
  const keys = createKeys({ db, clock, sealing, audit, guard, cache, baseUrlOf, changed });
  const keyBackups = createKeyBackups({ db, clock, sealer, sealing, guard, changed });
  const keyOperations = createKeyOperations({ db, clock, guard, cache, records, sealing });
  const keyPolicies = createKeyPolicies({ db, clock, audit, guard, keys, baseUrlOf, changed });
  deps.jobs.add(keyRotationJob({ policies: keyPolicies }));
  deps.jobs.add(keyPurgeJob({ keys }));
  return {
    keys,
    keyBackups,
    keyOperations,
    keyPolicies,
    /** Another service changed this key's rows (a certificate's key): drop its cached versions everywhere. */
    keyChanged: changed,
    /** The parsed private keys held (tests: a purged key's must be gone on every node). */
    parsedKeys: { holds: cache.holds },
  };
}
