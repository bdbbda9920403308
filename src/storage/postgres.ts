import { AsyncLocalStorage } from 'node:async_hooks';
import pg from 'pg';
import { LatchkeyError } from '../errors/index.js';
import type { Database, Queryable, RunResult, SqlValue, Transaction } from './port.js';

// BIGINT columns hold epoch milliseconds and counters well inside 2^53.
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === 20 /* int8 */) return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format);
  },
};

/** SQLSTATEs of a server that is going away, restarting or refusing connections for now. */
const UNAVAILABLE_STATES = new Set(['57P01', '57P02', '57P03', '53300']);
/** Socket errors of a connection that broke or could not be made. */
const UNAVAILABLE_ERRNOS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);

/**
 * True for errors that mean "the database is not reachable now" (a restart, a failover, a network
 * break), as opposed to errors of the statement itself. Such an error is retryable by the client.
 */
export function isConnectionError(e: unknown): boolean {
  const err = e as { code?: unknown; message?: unknown } | null;
  if (!err || typeof err !== 'object') return false;
  const code = typeof err.code === 'string' ? err.code : '';
  if (code.startsWith('08') || UNAVAILABLE_STATES.has(code) || UNAVAILABLE_ERRNOS.has(code)) return true;
  const message = typeof err.message === 'string' ? err.message : '';
  return /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Client was closed)/.test(
    message,
  );
}

/** What a request sees while the database is away: 503 with Retry-After (the edge shapes it). */
export const storageUnavailable = (cause: unknown): LatchkeyError =>
  new LatchkeyError('ServiceUnavailable', 'The database is not reachable at the moment; retry shortly.', {
    headers: { 'retry-after': '1' },
    cause,
  });

/** Runs a driver call, turning connection failures into `storageUnavailable`. */
async function guarded<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (e) {
    throw isConnectionError(e) ? storageUnavailable(e) : e;
  }
}

function wrap(client: pg.Pool | pg.PoolClient): Queryable {
  return {
    async all<T>(sql: string, params: readonly SqlValue[] = []) {
      const r = await guarded(() => client.query(sql, params as SqlValue[]));
      return r.rows as T[];
    },
    async get<T>(sql: string, params: readonly SqlValue[] = []) {
      const r = await guarded(() => client.query(sql, params as SqlValue[]));
      return r.rows[0] as T | undefined;
    },
    async run(sql: string, params: readonly SqlValue[] = []): Promise<RunResult> {
      const r = await guarded(() => client.query(sql, params as SqlValue[]));
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
  options: { max?: number; applicationName?: string; connectTimeoutMs?: number } = {},
): Database {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    // While the database is away, a request fails (503) after this long instead of waiting forever.
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5_000,
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
      const client = await guarded(() => pool.connect());
      let broken = false;
      // pg-pool listens for errors only on idle clients: a checked-out client whose connection
      // the server ends (a restart: 57P01) emits 'error' with no listener, which kills the process.
      const onError = () => {
        broken = true;
      };
      client.on('error', onError);
      try {
        await guarded(() => client.query('BEGIN'));
        if (options.relaxed) await guarded(() => client.query('SET LOCAL synchronous_commit TO OFF'));
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
          const done = await guarded(() => client.query('COMMIT'));
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
        client.off('error', onError);
        client.release(broken);
      }
    },
    current: () => inTx.getStore(),
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
