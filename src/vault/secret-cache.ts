import { type CacheMark, createRowCache, type RowCacheDeps } from '../lib/change-cache.js';
import type { SealedSecret } from '../storage/vault/secret-store.js';

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
export function createSecretCache(deps: RowCacheDeps) {
  const { bus } = deps;
  const cache = createRowCache<SealedSecret>(deps);
  const keyOf = (vaultId: string, nameLower: string) => `${vaultId}|${nameLower}`;
  bus?.subscribe('secret', (key) => cache.drop(key));
  bus?.subscribe('vault', () => cache.clear());
  bus?.onResync(() => cache.clear());

  return {
    /** The cached latest version, if there is a fresh one. */
    get(vaultId: string, nameLower: string): SealedSecret | undefined {
      return cache.get(keyOf(vaultId, nameLower));
    },
    /** Taken before reading from SQL; hand it to `put`. */
    mark(): CacheMark {
      return cache.mark();
    },
    /** Caches a row read since `mark`, unless anything changed meanwhile. */
    put(vaultId: string, nameLower: string, row: SealedSecret, mark: CacheMark): void {
      cache.put(keyOf(vaultId, nameLower), row, mark);
    },
    /** After a change to the secret committed (or failed): drop it here and on every other node. */
    changed(vaultId: string, nameLower: string): void {
      const key = keyOf(vaultId, nameLower);
      cache.drop(key);
      bus?.publish('secret', key);
    },
    get size(): number {
      return cache.size;
    },
  };
}
export type SecretCache = ReturnType<typeof createSecretCache>;
