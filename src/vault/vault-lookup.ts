import { type CacheStats, cacheStats } from '../lib/cache-stats.js';
import type { Clock } from '../lib/clock.js';
import type { ChangeBus } from '../lib/events.js';
import type { Database } from '../storage/port.js';
import { vaultStore as store } from '../storage/vault/vault-store.js';
import { isVaultName, type Vault, vaultFromRecord } from './model.js';

/**
 * The data plane's vault lookup: the vault named by a host (any tenant, deleted
 * included), cached and dropped on the bus's `vault` change notifications.
 */
export function createVaultLookup(
  db: Database,
  clock: Clock,
  bus: ChangeBus,
  opts: { cacheTtlMs?: number; stats?: CacheStats } = {},
) {
  // Vault properties decide access (access policies, RBAC mode, deletion): re-read at least once
  // a second on every node, even one that missed the change notification.
  const ttl = Math.min(opts.cacheTtlMs ?? 1_000, 1_000);
  const stats = opts.stats ?? cacheStats();
  const cache = new Map<string, { at: number; vault: Vault | undefined }>();
  // Bumped by every drop: a read under way meanwhile (it may predate the change) answers its own
  // request but is not kept (as lib/change-cache.ts's `mark`/`put`).
  let epoch = 0;
  bus.subscribe('vault', (nameLower) => {
    epoch++;
    cache.delete(nameLower);
  });
  bus.onResync(() => {
    epoch++;
    cache.clear();
  });

  return async function byName(nameLower: string): Promise<Vault | undefined> {
    const hit = cache.get(nameLower);
    const now = clock.monotonic(); // a wall-clock step must not keep a vault's access settings
    // Only an active vault is served from memory: "no such vault" is always checked against
    // the database, so a vault just created or recovered on another node is found at once.
    if (hit?.vault && hit.vault.deletedAt === null && now - hit.at < ttl) {
      stats.hits++;
      return hit.vault;
    }
    stats.misses++;
    const mark = epoch;
    const r = isVaultName(nameLower) ? await store.byName(db, nameLower) : undefined;
    const vault = r && vaultFromRecord(r);
    if (cache.size > 10_000) cache.clear();
    // Not a read inside a transaction (its uncommitted row: a rollback publishes nothing).
    if (mark === epoch && db.current() === undefined) cache.set(nameLower, { at: now, vault });
    return vault;
  };
}
