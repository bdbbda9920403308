import type { LoadedKey } from './key-crypto.js';

/**
 * Parsed private keys by (vault, key, version), so a crypto operation does not
 * unseal and parse the key each time. A version's material never changes;
 * entries go when the key is purged or the cache is full (oldest first).
 */
export function createKeyCache(max = 2_000) {
  const entries = new Map<string, LoadedKey>();
  const id = (vaultId: string, nameLower: string, version: string) => `${vaultId}|${nameLower}|${version}`;
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
      const prefix = nameLower === undefined ? `${vaultId}|` : `${vaultId}|${nameLower}|`;
      for (const k of entries.keys()) if (k.startsWith(prefix)) entries.delete(k);
    },
  };
}
export type KeyCache = ReturnType<typeof createKeyCache>;
