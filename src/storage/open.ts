import { resolve } from 'node:path';
import { migrate } from './migrate.js';
import { ALL_MIGRATIONS } from './migrations/index.js';
import type { Database } from './port.js';
import { openSqlite } from './sqlite.js';

/**
 * Opens `sqlite:PATH`, `sqlite::memory:` or `postgres://...` and brings the schema up to date.
 * `applicationName` names this node's PostgreSQL sessions (`pg_stat_activity.application_name`).
 */
export async function openDatabase(url: string, opts: { applicationName?: string } = {}): Promise<Database> {
  let db: Database;
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length);
    db = openSqlite(path === ':memory:' ? path : resolve(path));
  } else if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    // Loaded only when used: `pg` is a noticeable share of a SQLite node's start-up time.
    const { openPostgres } = await import('./postgres.js');
    db = openPostgres(url, opts.applicationName ? { applicationName: opts.applicationName } : {});
  } else {
    throw new Error('storage URL must start with sqlite: or postgres://');
  }
  try {
    await migrate(db, ALL_MIGRATIONS);
  } catch (e) {
    await db.close();
    throw e;
  }
  return db;
}
