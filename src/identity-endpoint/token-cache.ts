import type { Clock } from '../lib/clock.js';
import type { IssuedToken } from './control-plane.js';

export interface TokenCacheOptions {
  /** Never hand out a token with less than this left (clients treat tokens as expired 5 minutes early). */
  minRemainingMs: number;
  /** Refresh in the background once this fraction of the lifetime has passed. */
  refreshAtFraction: number;
  maxEntries: number;
}

export const DEFAULT_TOKEN_CACHE: TokenCacheOptions = Object.freeze({
  minRemainingMs: 6 * 60_000,
  refreshAtFraction: 0.5,
  maxEntries: 10_000,
});

interface Entry {
  token: IssuedToken;
  clientId: string;
  issuedAt: number;
  refreshAt: number;
}

/**
 * Access tokens per identity and resource. A hit is served from memory; past
 * half its life a token is refreshed in the background (the caller still gets
 * the cached one); with less than `minRemainingMs` left the caller waits for
 * a fresh one. Concurrent misses for one key share a single request.
 */
export function createTokenCache(deps: {
  clock: Clock;
  fetch(principalId: string, clientId: string, resource: string): Promise<IssuedToken>;
  options?: Partial<TokenCacheOptions>;
  onError?(err: unknown): void;
}) {
  const { clock } = deps;
  const o = { ...DEFAULT_TOKEN_CACHE, ...deps.options };
  const entries = new Map<string, Entry>();
  const pending = new Map<string, Promise<IssuedToken>>();
  const keyOf = (principalId: string, resource: string) => `${principalId}\n${resource}`;

  const refresh = (principalId: string, clientId: string, resource: string): Promise<IssuedToken> => {
    const key = keyOf(principalId, resource);
    const running = pending.get(key);
    if (running) return running;
    const p = (async () => {
      const issuedAt = clock.now();
      const token = await deps.fetch(principalId, clientId, resource);
      const life = Math.max(0, token.expiresOn * 1000 - issuedAt);
      if (entries.size >= o.maxEntries) entries.delete(entries.keys().next().value!);
      entries.set(key, { token, clientId, issuedAt, refreshAt: issuedAt + life * o.refreshAtFraction });
      return token;
    })().finally(() => pending.delete(key));
    pending.set(key, p);
    return p;
  };

  /** A cached token with enough life left, without waiting (the server's synchronous fast path). */
  const peek = (principalId: string, resource: string): IssuedToken | undefined => {
    const key = keyOf(principalId, resource);
    const e = entries.get(key);
    const now = clock.now();
    if (!e || e.token.expiresOn * 1000 - now <= o.minRemainingMs) return undefined;
    if (now >= e.refreshAt && !pending.has(key))
      refresh(principalId, e.clientId, resource).catch((err) => deps.onError?.(err));
    return e.token;
  };

  return {
    peek,
    /** A cached token, or a fresh one (waiting for it). */
    async get(principalId: string, clientId: string, resource: string): Promise<IssuedToken> {
      return peek(principalId, resource) ?? refresh(principalId, clientId, resource);
    },
    /** Drops every token of an identity (it left this host, or was deleted). */
    drop(principalId: string): void {
      for (const k of entries.keys()) if (k.startsWith(`${principalId}\n`)) entries.delete(k);
    },
    clear(): void {
      entries.clear();
    },
    get size(): number {
      return entries.size;
    },
  };
}
export type TokenCache = ReturnType<typeof createTokenCache>;
