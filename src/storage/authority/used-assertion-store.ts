import type { Queryable } from '../port.js';

/**
 * The SQL behind remembered client-assertion ids (migration 0001): oidc-provider's
 * `ReplayDetection.unique`, a one-time mark per key until the assertion expires.
 */
export const usedAssertionStore = {
  /** Records `jtiHash` until `expiresAt`; false when it was recorded already (a replay). */
  async consume(q: Queryable, jtiHash: string, expiresAt: number): Promise<boolean> {
    const r = await q.run(
      'INSERT INTO used_assertions (jti_hash, expires_at) VALUES ($1, $2) ON CONFLICT (jti_hash) DO NOTHING',
      [jtiHash, expiresAt],
    );
    return r.changes > 0;
  },
  /** Forgets ids whose assertions expired before `now`; returns how many. */
  async prune(q: Queryable, now: number): Promise<number> {
    return (await q.run('DELETE FROM used_assertions WHERE expires_at < $1', [now])).changes;
  },
};
