import type { LoadedKey } from './key-crypto.js';

/**
 * Parsed private keys by (vault, key, version), so a crypto operation does not
 * unseal and parse the key each time. A version's material never changes;
 * entries go when the key changes in any way (so a purged key's material leaves
 * the memory of every node, not only of the one that purged it: key-domain.ts
 * drops them on the change bus's `key`), when a vault changes, or when the cache
 * is full (oldest first).
 */
export function createKeyCache(max = 2_000) {
  const entries = new Map<string, LoadedKey>();
  const id = (vaultId: string, nameLower: string, version: string) => `${vaultId}|${nameLower}|${version}`;
  /** Every version of a key, or every key of a vault. */
  const prefixOf = (vaultId: string, nameLower?: string) =>
    nameLower === undefined ? `${vaultId}|` : `${vaultId}|${nameLower}|`;
  return {
    get(vaultId: string, nameLower: string, version: string): LoadedKey | undefined {
      return entries.get(id(vaultId, nameLower, version));
    },
    set(vaultId: string, nameLower: string, version: string, key: LoadedKey): void {
      if (entries.size >= max) entries.delete(entries.keys().next().value!);
      entries.set(id(vaultId, nameLower, version), key);
    },
    /** Drops every version of a key (purge), or of a whole vault. */
    evict(vaultId: string, nameLower?: string): void {
      const prefix = prefixOf(vaultId, nameLower);
      for (const k of entries.keys()) if (k.startsWith(prefix)) entries.delete(k);
    },
    /** Drops everything (a vault changed or was purged somewhere: its keys' ids are not known here). */
    clear(): void {
      entries.clear();
    },
    /** Whether any version of the key (or any key of the vault) is held (tests). */
    holds(vaultId: string, nameLower?: string): boolean {
      const prefix = prefixOf(vaultId, nameLower);
      for (const k of entries.keys()) if (k.startsWith(prefix)) return true;
      return false;
    },
  };
}
export type KeyCache = ReturnType<typeof createKeyCache>;
