import type { AccessToken } from './types.js';

/** Clients treat a token as expired this long before it does. */
export const EXPIRY_MARGIN_MS = 5 * 60_000;

/**
 * Caches tokens per scope. A token is reused until its refresh time; after
 * that a refresh is attempted (the cached token is still returned if that
 * fails and it has more than the margin left); concurrent requests share one
 * fetch.
 */
export function createTokenCache(fetch: (scope: string) => Promise<AccessToken>, now = () => Date.now()) {
  const cache = new Map<string, AccessToken>();
  const pending = new Map<string, Promise<AccessToken>>();
  const refresh = (scope: string) => {
    let p = pending.get(scope);
    if (!p) {
      p = fetch(scope)
        .then((t) => {
          cache.set(scope, t);
          return t;
        })
        .finally(() => pending.delete(scope));
      pending.set(scope, p);
    }
    return p;
  };
  return async (scope: string): Promise<AccessToken> => {
    const t = cache.get(scope);
    const n = now();
    if (t && n < t.expiresOnTimestamp - EXPIRY_MARGIN_MS) {
      if (n < (t.refreshAfterTimestamp ?? t.expiresOnTimestamp - EXPIRY_MARGIN_MS)) return t;
      return refresh(scope).catch(() => t);
    }
    return refresh(scope);
  };
}

/** Halfway through its life (Entra's refresh_in convention), and at least the margin before expiry. */
export function withRefresh(token: string, expiresOnMs: number, issuedAtMs: number): AccessToken {
  const half = issuedAtMs + (expiresOnMs - issuedAtMs) / 2;
  return {
    token,
    expiresOnTimestamp: expiresOnMs,
    refreshAfterTimestamp: Math.min(half, expiresOnMs - EXPIRY_MARGIN_MS),
    tokenType: 'Bearer',
  };
}
