import type { AccessTokenClaims, TokenVerifier } from '../authority/tokens.js';
import { type CacheStats, cacheStats } from '../lib/cache-stats.js';
import type { Clock } from '../lib/clock.js';
import type { ChangeBus } from '../lib/events.js';

/**
 * A verifier that remembers tokens it has fully verified, so a client that
 * reuses its token (every SDK does) costs one signature check, not one per
 * request. A hit still needs the same audiences and an unexpired token (no
 * clock tolerance: an expiring token goes back through full verification);
 * a signing-key change empties the cache. The caller must still check that
 * the principal exists and is enabled on every request (the authenticator does).
 */
export function createCachingVerifier(deps: {
  verifier: TokenVerifier;
  clock: Clock;
  bus: ChangeBus;
  maxEntries?: number;
  stats?: CacheStats;
}): TokenVerifier & { close(): void } {
  const { verifier, clock } = deps;
  const max = deps.maxEntries ?? 10_000;
  const stats = deps.stats ?? cacheStats();
  const cache = new Map<string, { audiences: string; claims: AccessTokenClaims }>();
  const unsubscribe = [
    deps.bus.subscribe('signingKey', () => cache.clear()),
    deps.bus.onResync(() => cache.clear()),
  ];
  return {
    /** Leaves the change bus (the app that made it is closed, or its build failed). */
    close(): void {
      for (const u of unsubscribe.splice(0)) u();
      cache.clear();
    },
    async verify(token: string, audiences: readonly string[]): Promise<AccessTokenClaims> {
      const key = audiences.join(' ');
      const hit = cache.get(token);
      const now = clock.now() / 1000;
      if (hit && hit.audiences === key && hit.claims.exp > now && hit.claims.nbf <= now) {
        stats.hits++;
        return hit.claims;
      }
      stats.misses++;
      if (hit) cache.delete(token);
      const claims = await verifier.verify(token, audiences);
      if (claims.exp > now && claims.nbf <= now) {
        if (cache.size >= max) cache.delete(cache.keys().next().value!);
        cache.set(token, { audiences: key, claims });
      }
      return claims;
    },
  };
}
