import { AsyncLocalStorage } from 'node:async_hooks';
import pg from 'pg';
import type { Database, Queryable, RunResult, SqlValue, Transaction } from './port.js';

// BIGINT columns hold epoch milliseconds and counters well inside 2^53.
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === 20 /* int8 */) return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format);
  },
};

function wrap(client: pg.Pool | pg.PoolClient): Queryable {
  return {
    async all<T>(sql: string, params: readonly SqlValue[] = []) {
      const r = await client.query(sql, params as SqlValue[]);
      return r.rows as T[];
    },
    async get<T>(sql: string, params: readonly SqlValue[] = []) {
      const r = await client.query(sql, params as SqlValue[]);
      return r.rows[0] as T | undefined;
    },
    async run(sql: string, params: readonly SqlValue[] = []): Promise<RunResult> {
      const r = await client.query(sql, params as SqlValue[]);
      return { changes: r.rowCount ?? 0 };
    },
  };
}

/**
 * PostgreSQL adapter (`pg` pool). Several stateless nodes may share one database.
 * `applicationName` labels the sessions in `pg_stat_activity` (a node id, for operators).
 */
export function openPostgres(
  url: string,
  options: { max?: number; applicationName?: string } = {},
): Database {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    types,
    ...(options.applicationName ? { application_name: options.applicationName.slice(0, 63) } : {}),
  });
  // An idle client's error (server restart) must not crash the process.
  pool.on('error', () => {});
  const pooled = wrap(pool);
  const inTx = new AsyncLocalStorage<Transaction>();
  // Code running inside a transaction (same async context) uses its connection, so it
  // sees the transaction's own writes — the same semantics as the SQLite adapter.
  const base: Queryable = {
    all: (sql, params) => (inTx.getStore() ?? pooled).all(sql, params),
    get: (sql, params) => (inTx.getStore() ?? pooled).get(sql, params),
    run: (sql, params) => (inTx.getStore() ?? pooled).run(sql, params),
  };
  return {
    dialect: 'postgres',
    ...base,
    async transaction<T>(
      fn: (tx: Transaction) => Promise<T>,
      options: { relaxed?: boolean } = {},
    ): Promise<T> {
      const current = inTx.getStore();
      if (current) return fn(current); // nested: join the open transaction
      const client = await pool.connect();
      let broken = false;
      try {
        await client.query('BEGIN');
        if (options.relaxed) await client.query('SET LOCAL synchronous_commit TO OFF');
        const tx: Transaction = {
          ...wrap(client),
          async lock(name: string) {
            await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [name]);
          },
        };
        try {
          const result = await inTx.run(tx, () => fn(tx));
          // PostgreSQL answers COMMIT of a transaction that failed along the way (a statement
          // whose error nobody awaited) with ROLLBACK, not an error: never acknowledge that.
          const done = await client.query('COMMIT');
          if (done.command !== 'COMMIT') throw new Error('the transaction was rolled back at commit');
          return result;
        } catch (e) {
          try {
            await client.query('ROLLBACK');
          } catch {
            broken = true;
          }
          throw e;
        }
      } finally {
        client.release(broken);
      }
    },
    async ping() {
      try {
        await pool.query('SELECT 1');
        return true;
      } catch {
        return false;
      }
    },
    async close() {
      await pool.end();
    },
  };
}
