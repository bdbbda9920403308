import type { CacheStats } from './cache-stats.js';
import type { Clock } from './clock.js';
import type { ChangeBus } from './events.js';

/**
 * A bounded in-memory cache for rows that change through the change bus
 * (src/lib/events.ts): each entry lives at most `maxAgeMs` from when its read
 * started, the least recently used goes when `max` entries are held, and the
 * owner drops entries when it hears of a change. A read from the database that
 * was under way while anything was dropped is not cached: take `mark()` before
 * reading and hand it to `put`, so a row read before a change committed never
 * outlives the change (and, if the change is not heard, lives at most `maxAgeMs`
 * after it committed, however long the read took).
 */
export interface ChangeCache<V> {
  /** The fresh entry for `key`, if any (counts a hit or a miss). */
  get(key: string): V | undefined;
  mark(): CacheMark;
  /** Caches `value`, read since `mark`, unless anything was dropped meanwhile. */
  put(key: string, value: V, mark: CacheMark): void;
  /** Drops a change: the entry, and any read under way is not kept. */
  drop(key: string): void;
  /** Forgets one entry that a re-read found gone (not a change: reads under way may still be kept). */
  evict(key: string): void;
  /** Drops every entry whose value matches (changes are rare: a scan is fine). */
  dropWhere(match: (value: V) => boolean): void;
  clear(): void;
  readonly size: number;
}

/**
 * What a cache of vault rows built on this one takes (the secret cache, the key record cache):
 * the bus that drops its entries, its bounds (defaults 10,000 entries, 1 s), and whether a read
 * runs inside a transaction (not cached, see `createChangeCache`).
 */
export interface RowCacheDeps {
  clock: Clock;
  bus?: ChangeBus;
  max?: number;
  maxAgeMs?: number;
  stats?: CacheStats;
  inTransaction?: () => boolean;
}

/** A change cache with a row cache's bounds and options (`RowCacheDeps`). */
export const createRowCache = <V>(deps: RowCacheDeps): ChangeCache<V> =>
  createChangeCache<V>({
    clock: deps.clock,
    max: deps.max ?? 10_000,
    maxAgeMs: deps.maxAgeMs ?? 1_000,
    ...(deps.stats ? { stats: deps.stats } : {}),
    ...(deps.inTransaction ? { inTransaction: deps.inTransaction } : {}),
  });

/** Taken before a read (`ChangeCache.mark`): what was dropped until then, and when the read started. */
export interface CacheMark {
  readonly epoch: number;
  /** The monotonic clock's ms: a wall-clock step must not keep an entry longer. */
  readonly at: number;
  /** The read runs inside a transaction: what it reads may be rolled back, so it is not cached. */
  readonly inTransaction: boolean;
}

export function createChangeCache<V>(opts: {
  clock: Clock;
  max: number;
  maxAgeMs: number;
  stats?: CacheStats;
  /**
   * Whether the code taking a mark runs inside a transaction (the owner's `db.current()`): such a
   * read sees the transaction's uncommitted rows (a role assignment, a secret version), and a
   * rollback publishes no change that would drop them, so it is answered but never cached.
   */
  inTransaction?: () => boolean;
}): ChangeCache<V> {
  const { clock, max, maxAgeMs, stats } = opts;
  const entries = new Map<string, { value: V; at: number }>();
  let epoch = 0;
  return {
    get(key) {
      const e = entries.get(key);
      if (e && clock.monotonic() - e.at < maxAgeMs) {
        entries.delete(key);
        entries.set(key, e);
        if (stats) stats.hits++;
        return e.value;
      }
      if (e) entries.delete(key);
      if (stats) stats.misses++;
      return undefined;
    },
    mark: () => ({ epoch, at: clock.monotonic(), inTransaction: opts.inTransaction?.() === true }),
    put(key, value, mark) {
      if (mark.epoch !== epoch || mark.inTransaction) return;
      entries.delete(key);
      if (entries.size >= max) entries.delete(entries.keys().next().value!);
      // Aged from when the read started: a change it missed (not heard) counts within maxAgeMs.
      entries.set(key, { value, at: mark.at });
    },
    drop(key) {
      epoch++;
      entries.delete(key);
    },
    evict(key) {
      entries.delete(key);
    },
    dropWhere(match) {
      epoch++;
      for (const [k, e] of entries) if (match(e.value)) entries.delete(k);
    },
    clear() {
      epoch++;
      entries.clear();
    },
    get size() {
      return entries.size;
    },
  };
}
