import type { Queryable } from '../port.js';

/**
 * The SQL behind remembered client-assertion ids (migrations 0001 and 0022): oidc-provider's
 * `ReplayDetection.unique`, a one-time mark per key until the assertion expires. The key is
 * (expires_at, jti_hash), in that order, so that marks are written in expiry order (a batch fills
 * the same few pages) and the prune is a range of the key.
 */
export const usedAssertionStore = {
  /**
   * Records `jtiHash` until `expiresAt` (ms, an integer: part of the key); false when that pair
   * was recorded already (a replay).
   */
  async consume(q: Queryable, jtiHash: string, expiresAt: number): Promise<boolean> {
    const r = await q.run(
      'INSERT INTO used_assertions (expires_at, jti_hash) VALUES ($1, $2) ON CONFLICT (expires_at, jti_hash) DO NOTHING',
      [expiresAt, jtiHash],
    );
    return r.changes > 0;
  },
  /** Forgets ids whose assertions expired before `now`; returns how many. */
  async prune(q: Queryable, now: number): Promise<number> {
    return (await q.run('DELETE FROM used_assertions WHERE expires_at < $1', [now])).changes;
  },
};
