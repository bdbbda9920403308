import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Database } from '../../src/storage/port.js';
import { openPostgres } from '../../src/storage/postgres.js';
import { openSqlite } from '../../src/storage/sqlite.js';
import { createTestSchema } from './postgres.js';

/** A fresh, empty store of one dialect for a store-level test; `cleanup` removes it (call it after `db.close()`). */
export interface FreshStore {
  db: Database;
  cleanup: () => Promise<void>;
}

/**
 * Each dialect with a way to open a fresh, unmigrated store: SQLite in a temp dir, PostgreSQL in a
 * new schema of the test server. For tests that run the same store-level case on both.
 */
export const FRESH_STORES = [
  [
    'sqlite',
    async (): Promise<FreshStore> => {
      const d = mkdtempSync(join(tmpdir(), 'lk-store-'));
      return {
        db: openSqlite(join(d, 'a.db')),
        cleanup: async () => rmSync(d, { recursive: true, force: true }),
      };
    },
  ],
  [
    'postgres',
    async (): Promise<FreshStore> => {
      const schema = await createTestSchema();
      return { db: openPostgres(schema.url, { max: 2 }), cleanup: () => schema.drop() };
    },
  ],
] as const;
