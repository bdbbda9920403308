import type { CacheStats } from '../lib/cache-stats.js';
import type { Clock } from '../lib/clock.js';
import type { ChangeBus } from '../lib/events.js';
import type { SealedSecret } from '../storage/vault/secret-store.js';

interface Entry {
  row: SealedSecret;
  at: number;
}

/**
 * The latest version of a secret per (vault, name), as stored: metadata and the
 * sealed value, never the plaintext (every GET still unseals). It is consulted
 * only after the caller is authorized, and the answer is decided from the row
 * exactly as for a row read from SQL (deleted, disabled), so a cached entry
 * changes how fast an answer comes, never what it is.
 *
 * Invalidation: every change to a secret calls `changed` after its commit, which
 * drops the entry here and publishes `secret` on the change bus (other nodes drop
 * theirs when the notification arrives; a vault change or a relay resync empties
 * the cache). A read that was under way while a change happened is not cached
 * (`mark`/`put`), so a row read before a commit never outlives it. Entries are
 * re-read after `maxAgeMs` (1 s, the bound of every security-relevant cache when a
 * notification is lost, docs/deployment.md), and the least recently used goes when
 * `max` entries are held.
 */
export function createSecretCache(deps: {
  clock: Clock;
  bus?: ChangeBus;
  max?: number;
  maxAgeMs?: number;
  stats?: CacheStats;
}) {
  const { clock, bus, stats } = deps;
  const max = deps.max ?? 10_000;
  const maxAgeMs = deps.maxAgeMs ?? 1_000;
  const entries = new Map<string, Entry>();
  /** Bumped by every drop: a read that started under an older epoch is not cached. */
  let epoch = 0;
  const keyOf = (vaultId: string, nameLower: string) => `${vaultId}|${nameLower}`;
  const drop = (key: string) => {
    epoch++;
    entries.delete(key);
  };
  const clear = () => {
    epoch++;
    entries.clear();
  };
  bus?.subscribe('secret', drop);
  bus?.subscribe('vault', clear);
  bus?.onResync(clear);

  return {
    /** The cached latest version, if there is a fresh one. */
    get(vaultId: string, nameLower: string): SealedSecret | undefined {
      const key = keyOf(vaultId, nameLower);
      const e = entries.get(key);
      if (e && clock.now() - e.at < maxAgeMs) {
        // Least recently used goes first: a hit moves the entry to the end.
        entries.delete(key);
        entries.set(key, e);
        if (stats) stats.hits++;
        return e.row;
      }
      if (e) entries.delete(key);
      if (stats) stats.misses++;
      return undefined;
    },
    /** Taken before reading from SQL; hand it to `put`. */
    mark(): number {
      return epoch;
    },
    /** Caches a row read since `mark`, unless anything changed meanwhile. */
    put(vaultId: string, nameLower: string, row: SealedSecret, mark: number): void {
      if (mark !== epoch) return;
      const key = keyOf(vaultId, nameLower);
      entries.delete(key);
      if (entries.size >= max) entries.delete(entries.keys().next().value!);
      entries.set(key, { row, at: clock.now() });
    },
    /** After a change to the secret committed (or failed): drop it here and on every other node. */
    changed(vaultId: string, nameLower: string): void {
      const key = keyOf(vaultId, nameLower);
      drop(key);
      bus?.publish('secret', key);
    },
    get size(): number {
      return entries.size;
    },
  };
}
export type SecretCache = ReturnType<typeof createSecretCache>;
