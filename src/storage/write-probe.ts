import { randomBytes } from 'node:crypto';
import type { Database, SqlValue } from './port.js';

/**
 * The write probe behind `Database.probeWrite`: one transaction that writes a 16 KiB row into
 * `meta` (so it needs pages the store may not have: new database pages, WAL, relation extension)
 * and removes it again. Nothing is left behind whether it commits or not.
 */
export const WRITE_PROBE = {
  write:
    "INSERT INTO meta (key, value) VALUES ('write_probe', $1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
  remove: "DELETE FROM meta WHERE key = 'write_probe'",
  /** Random, so PostgreSQL's TOAST compression cannot shrink it to nothing. */
  params: (): SqlValue[] => [randomBytes(8192).toString('hex')],
};

/** Runs the probe in `db`'s transaction; true when it committed. */
export async function probeWrite(db: Pick<Database, 'transaction'>): Promise<boolean> {
  try {
    await db.transaction(async (tx) => {
      await tx.run(WRITE_PROBE.write, WRITE_PROBE.params());
      await tx.run(WRITE_PROBE.remove);
    });
    return true;
  } catch {
    return false;
  }
}
