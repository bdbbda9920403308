import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { migrate } from './migrate.js';
import { ALL_MIGRATIONS } from './migrations/index.js';
import type { Database } from './port.js';
import { openSqlite } from './sqlite.js';

export interface OpenOptions {
  /** Names this node's PostgreSQL sessions (`pg_stat_activity.application_name`). */
  applicationName?: string;
  /**
   * Told of each failed attempt while a PostgreSQL server is not reachable yet; the node
   * then waits `delayMs` and tries again (a node started before its database waits for it).
   */
  onWait?: (info: { attempt: number; delayMs: number; reason: string }) => void;
  /** First and largest wait between attempts (doubled, with jitter). */
  backoffMinMs?: number;
  backoffMaxMs?: number;
  /** SQLite: told when a sync of the write-ahead log fails (`SqliteOptions.onSyncFailure`). */
  onSyncFailure?: (error: unknown) => void;
}

/**
 * Opens `sqlite:PATH`, `sqlite::memory:` or `postgres://...` and brings the schema up to date.
 * A PostgreSQL server that is not reachable (down, restarting, refusing connections) is waited
 * for with backoff, for as long as it takes; any other failure (bad URL, authentication, a
 * migration error) is thrown at once.
 */
export async function openDatabase(url: string, opts: OpenOptions = {}): Promise<Database> {
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length);
    return migrated(
      openSqlite(
        path === ':memory:' ? path : resolve(path),
        opts.onSyncFailure ? { onSyncFailure: opts.onSyncFailure } : {},
      ),
    );
  }
  if (!(url.startsWith('postgres://') || url.startsWith('postgresql://')))
    throw new Error('storage URL must start with sqlite: or postgres://');
  // Loaded only when used: `pg` is a noticeable share of a SQLite node's start-up time.
  const { openPostgres, isConnectionError } = await import('./postgres.js');
  const min = opts.backoffMinMs ?? 250;
  const max = opts.backoffMaxMs ?? 5_000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await migrated(
        openPostgres(url, opts.applicationName ? { applicationName: opts.applicationName } : {}),
      );
    } catch (e) {
      const cause = e instanceof Error && e.cause !== undefined ? e.cause : e;
      if (!isConnectionError(e) && !isConnectionError(cause)) throw e;
      const delayMs = Math.round(Math.min(max, min * 2 ** (attempt - 1)) * (0.75 + Math.random() * 0.5));
      opts.onWait?.({ attempt, delayMs, reason: (cause as Error).message ?? String(cause) });
      await sleep(delayMs);
    }
  }
}

async function migrated(db: Database): Promise<Database> {
  try {
    await migrate(db, ALL_MIGRATIONS);
  } catch (e) {
    await db.close();
    throw e;
  }
  return db;
}
