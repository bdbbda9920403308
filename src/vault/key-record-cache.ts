import { type CacheMark, createRowCache, type RowCacheDeps } from '../lib/change-cache.js';
import type { KeyRecord } from './key-model.js';

/** What the change bus's `key` topic carries for a key: `{vault id}|{name, lower case}`. */
export const keyChangeId = (vaultId: string, nameLower: string): string => `${vaultId}|${nameLower}`;
/** The vault id and lower-case name of a `key` change id (undefined for anything else). */
export function parseKeyChangeId(id: string): { vaultId: string; nameLower: string } | undefined {
  const bar = id.indexOf('|');
  return bar > 0 ? { vaultId: id.slice(0, bar), nameLower: id.slice(bar + 1) } : undefined;
}

/**
 * Key versions as stored (public JWK, key_ops, enabled, nbf/exp, deleted;
 * never private material) per (vault, name, version or latest), for the crypto
 * operations (sign, ...). It is consulted only after the caller is authorized,
 * and the answer is decided from the record exactly as from a row read from SQL
 * (deleted, disabled, key_ops, nbf/exp against the clock now), so a cached entry
 * changes how fast an answer comes, never what it is.
 *
 * Invalidation, as the secret cache's (./secret-cache.ts): every change to a key
 * (a new version, an update, delete, recover, purge, restore, a rotation, a change
 * to its certificate) calls `changed` after its commit, which drops every cached
 * version of the name here and publishes `key` on the change bus (other nodes drop
 * theirs when the notification arrives; a vault change or a relay resync empties
 * the cache). A read under way while a change happened is not cached
 * (`mark`/`put`); entries are re-read after `maxAgeMs` (1 s) and the least
 * recently used goes when `max` entries are held.
 */
export function createKeyRecordCache(deps: RowCacheDeps) {
  const { bus } = deps;
  const cache = createRowCache<{ name: string; rec: KeyRecord }>(deps);
  const nameOf = keyChangeId;
  // '|' cannot occur in a key name or version: `{vault}|{name}|` is the latest version.
  const keyOf = (vaultId: string, nameLower: string, version: string | undefined) =>
    `${vaultId}|${nameLower}|${version ?? ''}`;
  const drop = (name: string) => cache.dropWhere((e) => e.name === name);
  bus?.subscribe('key', drop);
  bus?.subscribe('vault', () => cache.clear());
  bus?.onResync(() => cache.clear());

  return {
    /** The cached version (undefined: the latest), if there is a fresh one. */
    get(vaultId: string, nameLower: string, version: string | undefined): KeyRecord | undefined {
      return cache.get(keyOf(vaultId, nameLower, version))?.rec;
    },
    /** Taken before reading from SQL; hand it to `put`. */
    mark(): CacheMark {
      return cache.mark();
    },
    /** Caches a record read since `mark`, unless anything changed meanwhile. */
    put(
      vaultId: string,
      nameLower: string,
      version: string | undefined,
      rec: KeyRecord,
      mark: CacheMark,
    ): void {
      cache.put(keyOf(vaultId, nameLower, version), { name: nameOf(vaultId, nameLower), rec }, mark);
    },
    /** After a change to the key committed (or failed): drop its versions here and on every other node. */
    changed(vaultId: string, nameLower: string): void {
      const name = nameOf(vaultId, nameLower);
      drop(name);
      bus?.publish('key', name);
    },
    get size(): number {
      return cache.size;
    },
  };
}
export type KeyRecordCache = ReturnType<typeof createKeyRecordCache>;
