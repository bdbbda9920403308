import pg from 'pg';
import { isStorageFull, refuseNulText, storageRolledBack, toStorageError } from './errors.js';
import type { Database, Queryable, RunResult, SqlValue, Transaction } from './port.js';
import { createTxContext, createTxScope } from './tx-scope.js';
import { probeWrite } from './write-probe.js';

export { isConnectionError, storageUnavailable } from './errors.js';

// BIGINT columns hold epoch milliseconds and counters well inside 2^53.
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === 20 /* int8 */) return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format);
  },
};

/** Runs a driver call, turning driver errors into domain errors (storage/errors.ts). */
async function guarded<T>(call: () => Promise<T>, onFull?: () => void): Promise<T> {
  try {
    return await call();
  } catch (e) {
    const mapped = toStorageError(e);
    if (onFull && isStorageFull(mapped)) onFull();
    throw mapped;
  }
}

/** A statement that changed something (its success proves the store writable). */
const WRITE_COMMANDS = new Set(['INSERT', 'UPDATE', 'DELETE', 'MERGE']);

/** Told of each statement's outcome, for `Database.writable` (and a transaction's first failure). */
interface WriteWatch {
  full(): void;
  /** A statement that writes ran; `rows` it changed (their locks are held until the transaction ends). */
  wrote(sql: string, rows: number): void;
  failed?(e: unknown): void;
}

/**
 * Named (prepared) statements: each connection parses and plans a statement once and then only
 * binds and executes it (about half the node's CPU per query and less work for PostgreSQL, measured
 * in docs/performance.md). Names are per pool, one per distinct SQL text with parameters (texts
 * without parameters, such as migrations, go unnamed through the simple protocol), at most
 * `MAX_NAMED`; later texts go unnamed.
 */
const MAX_NAMED = 1_000;
function createStatementNames() {
  const names = new Map<string, string>();
  let generation = 0;
  return {
    of(sql: string): string | undefined {
      let n = names.get(sql);
      if (n === undefined && names.size < MAX_NAMED) {
        n = `lk${generation}_${names.size}`;
        names.set(sql, n);
      }
      return n;
    },
    /** New names for everything: every connection prepares its statements again. */
    reset() {
      names.clear();
      generation++;
    },
  };
}
type StatementNames = ReturnType<typeof createStatementNames>;

/**
 * A prepared `SELECT *` whose table gained a column since (a newer node migrated the schema during
 * a rolling upgrade) fails with this error instead of re-planning.
 */
const isStalePlan = (e: unknown): boolean =>
  (e as { code?: string }).code === '0A000' && /cached plan must not change result type/.test(String(e));

function wrap(
  client: pg.Pool | pg.PoolClient,
  watch: WriteWatch,
  statements: StatementNames,
  inTransaction: boolean,
): Queryable {
  const exec = (sql: string, params: readonly SqlValue[], named: boolean) => {
    const name = named && params.length > 0 ? statements.of(sql) : undefined;
    return name === undefined
      ? client.query(sql, params as SqlValue[])
      : client.query({ name, text: sql, values: params as SqlValue[] });
  };
  const query = async (sql: string, params: readonly SqlValue[]) => {
    refuseNulText(params);
    const r = await guarded(async () => {
      try {
        return await exec(sql, params, true);
      } catch (e) {
        watch.failed?.(e);
        if (!isStalePlan(e)) throw e;
        // Prepared under the old schema: every connection prepares again; a lone statement is
        // retried at once (a transaction has failed already and is answered with an error).
        statements.reset();
        if (inTransaction) throw e;
        return exec(sql, params, false);
      }
    }, watch.full);
    if (WRITE_COMMANDS.has(r.command)) watch.wrote(sql, r.rowCount ?? 0);
    return r;
  };
  return {
    async all<T>(sql: string, params: readonly SqlValue[] = []) {
      return (await query(sql, params)).rows as T[];
    },
    async get<T>(sql: string, params: readonly SqlValue[] = []) {
      return (await query(sql, params)).rows[0] as T | undefined;
    },
    async run(sql: string, params: readonly SqlValue[] = []): Promise<RunResult> {
      return { changes: (await query(sql, params)).rowCount ?? 0 };
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
  /** False from a write refused for lack of space until a write commits again (`Database.writable`). */
  let writable = true;
  const markFull = () => {
    writable = false;
  };
  const statements = createStatementNames();
  /** Statements on `client` (the pool, or a transaction's connection), `wrote` told of each write. */
  const watched = (
    client: pg.Pool | pg.PoolClient,
    inTransaction: boolean,
    wrote: (sql: string, rows: number) => void,
    failed?: (e: unknown) => void,
  ) => wrap(client, { full: markFull, wrote, ...(failed ? { failed } : {}) }, statements, inTransaction);
  // Outside a transaction a statement commits by itself: its success is proof enough.
  const pooled = watched(pool, false, () => {
    writable = true;
  });
  const inTx = createTxContext();
  const noop = () => {};
  /** The transaction this code runs in, unless it has ended (then: outside any, tx-scope.ts). */
  const liveTx = () => inTx.live();
  // Code running inside a transaction (same async context) uses its connection, so it
  // sees the transaction's own writes — the same semantics as the SQLite adapter.
  const base: Queryable = {
    all: (sql, params) => (liveTx() ?? pooled).all(sql, params),
    get: (sql, params) => (liveTx() ?? pooled).get(sql, params),
    run: (sql, params) => (liveTx() ?? pooled).run(sql, params),
  };
  /**
   * Runs `fn` on a connection of its own from the pool, released after it (dropped instead when
   * `fn` calls `broke`). pg-pool listens for errors only on idle clients: a checked-out client
   * whose connection the server ends (a restart: 57P01) emits 'error' with no listener, which
   * kills the process; so one listens while it is held (and marks it broken).
   */
  const withConnection = async <T>(
    fn: (client: pg.PoolClient, broke: () => void) => Promise<T>,
  ): Promise<T> => {
    const client = await guarded(() => pool.connect(), markFull);
    let broken = false;
    const broke = () => {
      broken = true;
    };
    client.on('error', broke);
    try {
      return await fn(client, broke);
    } finally {
      client.off('error', broke);
      client.release(broken);
    }
  };
  const database: Database = {
    dialect: 'postgres',
    ...base,
    async transaction<T>(
      fn: (tx: Transaction) => Promise<T>,
      options: { relaxed?: boolean; explicit?: boolean } = {},
    ): Promise<T> {
      const current = liveTx();
      if (current) return fn(current); // nested: join the open transaction
      return withConnection(async (client, broke) => {
        // One round trip: a relaxed transaction's setting goes with its BEGIN (simple protocol).
        await guarded(
          () => client.query(options.relaxed ? 'BEGIN; SET LOCAL synchronous_commit TO OFF' : 'BEGIN'),
          markFull,
        );
        let wrote = false;
        /** The first statement of this transaction that failed (the reason PostgreSQL aborted it). */
        let failure: unknown;
        // Before the statements' watch, which reports locks to it (its savepoints run through `q`).
        const scope = createTxScope((sql) => q.run(sql));
        const q = watched(
          client,
          true,
          (sql, rows) => {
            wrote = true;
            if (rows > 0) scope.took(sql);
          },
          (e) => {
            failure ??= e;
          },
        );
        const tx: Transaction = {
          ...q,
          // Through the wrapper like every statement: a lock waited on while the server shuts
          // down fails with 57P01, which must reach the caller as a 503, not as a driver error.
          async lock(name: string) {
            scope.took(name);
            await q.run('SELECT pg_advisory_xact_lock(hashtext($1))', [name]);
          },
          ...scope.members,
        };
        try {
          // Nothing to check before the hooks: a transaction PostgreSQL aborted along the way
          // refuses their statements too (25P02: a 503, as its COMMIT below would be).
          const result = await inTx.run(tx, () => scope.complete(() => fn(tx), noop), options.explicit);
          // PostgreSQL answers COMMIT of a transaction that failed along the way (a statement
          // whose error nobody awaited, or one caught and gone on from) with ROLLBACK, not an
          // error: never acknowledge that. Nothing was written: a retryable 503, as for a
          // serialization failure, with the statement's own error as the cause.
          const done = await guarded(() => client.query('COMMIT'), markFull);
          if (done.command !== 'COMMIT')
            throw storageRolledBack(failure ?? new Error('rolled back at commit'));
          if (wrote) writable = true;
          return result;
        } catch (e) {
          try {
            await client.query('ROLLBACK');
          } catch {
            broke();
          }
          throw e;
        }
      });
    },
    get writable() {
      return writable;
    },
    probeWrite: () => probeWrite(database),
    current: () => liveTx(),
    async ping() {
      try {
        await pool.query('SELECT 1');
        return true;
      } catch {
        return false;
      }
    },
    exclusive: (name: string, fn: () => Promise<void>): Promise<boolean> =>
      withConnection(async (client, broke) => {
        const got = await guarded(
          () => client.query<{ ok: boolean }>('SELECT pg_try_advisory_lock(hashtext($1)) AS ok', [name]),
          markFull,
        );
        if (!got.rows[0]?.ok) return false;
        try {
          await fn();
        } finally {
          try {
            await client.query('SELECT pg_advisory_unlock(hashtext($1))', [name]);
          } catch {
            broke(); // the session (and so its lock) is dropped with the connection
          }
        }
        return true;
      }),
    async close() {
      await pool.end();
    },
  };
  return database;
}
