import type { Transaction } from '../port.js';

/** Background jobs' cross-node lock (PostgreSQL only: SQLite has one node). */
export const jobLockStore = {
  /** Takes the job's advisory lock for the rest of `tx` if no other node holds it; false if one does. */
  async tryLock(tx: Transaction, jobName: string): Promise<boolean> {
    const r = await tx.get<{ ok: boolean }>('SELECT pg_try_advisory_xact_lock(hashtext($1)) AS ok', [
      `latchkey:job:${jobName}`,
    ]);
    return Boolean(r?.ok);
  },
};
