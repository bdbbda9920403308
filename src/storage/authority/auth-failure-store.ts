import type { Queryable } from '../port.js';

/** The SQL behind the failed-authentication counts every node shares (migration 0010). */
export const authFailureStore = {
  /**
   * Adds one failure to `key`'s count; a window that started at or before `overIfStartedBy`
   * is over, so the count starts again at 1 in a window from `now`. Returns the count and its window.
   */
  async addFailure(
    q: Queryable,
    key: string,
    now: number,
    overIfStartedBy: number,
  ): Promise<{ count: number; start: number } | undefined> {
    const row = await q.get<{ count: number; window_start: number }>(
      `INSERT INTO auth_failures (key, count, window_start) VALUES ($1, 1, $2)
       ON CONFLICT (key) DO UPDATE SET
         count = CASE WHEN auth_failures.window_start <= $3 THEN 1 ELSE auth_failures.count + 1 END,
         window_start = CASE WHEN auth_failures.window_start <= $3 THEN $2 ELSE auth_failures.window_start END
       RETURNING count, window_start`,
      [key, now, overIfStartedBy],
    );
    return row ? { count: Number(row.count), start: Number(row.window_start) } : undefined;
  },
  async clear(q: Queryable, key: string): Promise<void> {
    await q.run('DELETE FROM auth_failures WHERE key = $1', [key]);
  },
  /** Forgets counts whose window started at or before `overIfStartedBy`; returns how many. */
  async prune(q: Queryable, overIfStartedBy: number): Promise<number> {
    return (await q.run('DELETE FROM auth_failures WHERE window_start <= $1', [overIfStartedBy])).changes;
  },
};
