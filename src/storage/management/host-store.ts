import type { Queryable } from '../port.js';

/** The SQL behind hosts (src/management/hosts.ts, host-agent.ts). */
export const hostStore = {
  /**
   * Removes a principal's expired certificates that a host registered (its tag as the
   * credential's display name): they go before a new one is added.
   */
  async deleteExpiredHostCredentials(
    q: Queryable,
    principalId: string,
    tag: string,
    now: number,
  ): Promise<void> {
    await q.run('DELETE FROM credentials WHERE principal_id = $1 AND display_name = $2 AND end_at <= $3', [
      principalId,
      tag,
      now,
    ]);
  },
};
