/**
 * Hit and miss counts of one in-memory cache: plain numbers, so counting costs
 * one increment on the hot path. `/metrics` reads them when scraped
 * (src/server/metrics.ts); domain code never sees the metrics library.
 */
export interface CacheStats {
  hits: number;
  misses: number;
}

export const cacheStats = (): CacheStats => ({ hits: 0, misses: 0 });
