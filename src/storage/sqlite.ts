import { closeSync, existsSync, fdatasync, mkdirSync, openSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { isStorageFull, refuseNulText, storageRolledBack, toStorageError } from './errors.js';
import type { Database, Queryable, RunResult, SqlValue, Transaction } from './port.js';
import { createTxContext, createTxScope, type TxScope } from './tx-scope.js';
import { probeWrite } from './write-probe.js';

type Statement = BetterSqlite3.Statement<unknown[], unknown>;
/** A prepared statement plus the order in which `$n` placeholders appear (better-sqlite3 binds `?` positionally). */
interface Prepared {
  st: Statement;
  order: number[];
}

/** A tiny FIFO mutex: SQLite has one connection here, so transactions must not interleave. */
class Mutex {
  private tail: Promise<void> = Promise.resolve();
  private held = false;
  get locked(): boolean {
    return this.held;
  }
  async acquire(): Promise<() => void> {
    let release!: () => void;
    const next = new Promise<void>((r) => {
      release = r;
    });
    const prev = this.tail;
    this.tail = prev.then(() => next);
    await prev;
    this.held = true;
    return () => {
      this.held = false;
      release();
    };
  }
  /** Resolves when no transaction is open. */
  async idle(): Promise<void> {
    while (this.held) await this.tail;
  }
}

function toSqlite(sql: string): { text: string; order: number[] } {
  const order: number[] = [];
  const text = sql.replace(/\$(\d+)/g, (_m, n: string) => {
    order.push(Number(n) - 1);
    return '?';
  });
  return { text, order };
}

/**
 * Creates a database's directory 0700 and its file 0600 before SQLite opens it
 * (SQLite would create the file 0644 under the usual umask). SQLite gives the
 * `-wal` and `-shm` files it creates the database file's mode. Existing files
 * keep their mode: `sqliteStoreProblems` reports a loose one.
 */
function createPrivately(path: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  closeSync(openSync(path, 'a', 0o600));
}

/**
 * What makes a SQLite store unsafe to serve from: its database, `-wal` or `-shm`
 * file open to group or others (password hashes, wrapped keys, audit), or its
 * directory writable by them (they could swap the files). Empty when none
 * exists yet: `openSqlite` creates them private.
 */

/** A statement that changes rows (what PostgreSQL would hold row locks for until the end). */
const CHANGES_ROWS = /^\s*(INSERT|UPDATE|DELETE|REPLACE|WITH)\b/i;
export function sqliteStoreProblems(path: string): string[] {
  const problems: string[] = [];
  const dir = dirname(path);
  if (existsSync(dir) && (statSync(dir).mode & 0o022) !== 0)
    problems.push(`the storage directory ${dir} must not be writable by group or others (chmod 700)`);
  for (const p of [path, `${path}-wal`, `${path}-shm`]) {
    if (existsSync(p) && (statSync(p).mode & 0o077) !== 0)
      problems.push(`${p} must not be readable by group or others (chmod 600)`);
  }
  return problems;
}

/**
 * SQLite adapter (better-sqlite3, WAL, synchronous=FULL so an acknowledged
 * commit survives a crash of the process or the machine). `readonly: true`
 * opens an existing file without changing it (no journal mode set, writes
 * refused): checking a backup file or a store another process serves.
 */
export interface SqliteOptions {
  readonly?: boolean;
  /**
   * Told once when an `fdatasync` of the write-ahead log fails (`syncOffLoop` commits): the
   * file's state is then unknown, the store refuses every later transaction, and the server's
   * answer is to exit so that its supervisor restarts it and SQLite recovers the log from disk
   * (src/server/services.ts), as PostgreSQL stops after a failed fsync. Every batch acknowledged
   * before was synced, so the restart loses nothing acknowledged.
   */
  onSyncFailure?: (error: unknown) => void;
  /** The log's sync (tests make it fail); node:fs `fdatasync` by default. */
  fdatasync?: (fd: number, callback: (error: NodeJS.ErrnoException | null) => void) => void;
}

export function openSqlite(path: string, options: SqliteOptions = {}): Database {
  const readonly = options.readonly === true;
  const { onSyncFailure, fdatasync: syncFile = fdatasync } = options;
  if (path !== ':memory:' && !readonly) createPrivately(path);
  const db = new BetterSqlite3(path, readonly ? { readonly: true, fileMustExist: true } : {});
  let wal = false;
  if (!readonly) {
    wal = db.pragma('journal_mode = WAL', { simple: true }) === 'wal';
    db.pragma('synchronous = FULL');
  }
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  const cache = new Map<string, Prepared>();
  const mutex = new Mutex();
  // The switch of relaxed and syncOffLoop commits. Not a prepared statement: SQLite applies
  // `PRAGMA synchronous` when it compiles the statement, so a prepared one does nothing when run.
  const setSync = (mode: 'NORMAL' | 'FULL') => db.exec(`PRAGMA synchronous = ${mode}`);

  // `syncOffLoop` commits (Database.transaction): SQLite commits with synchronous=NORMAL (the
  // write-ahead log written, not synced) and the log is then fdatasync'ed here, on libuv's thread
  // pool — the one sync synchronous=FULL adds to a commit in WAL mode (SQLite's unix VFS:
  // fdatasync of the -wal file; powersafe overwrite, so no padding). The log file is the same
  // inode for as long as this connection is open; it is checked (and reopened) before each sync.
  const walPath = `${path}-wal`;
  let walFile: { fd: number; dev: number; ino: number } | undefined;
  /** Set once a sync of the log failed: the file's state is unknown, so nothing more is written. */
  let syncFailure: unknown;
  /** The log's descriptor, (re)opened if the file at `walPath` is not the one already open. */
  const walFd = (): number => {
    const st = statSync(walPath);
    if (!walFile || walFile.dev !== st.dev || walFile.ino !== st.ino) {
      if (walFile) closeSync(walFile.fd);
      walFile = undefined;
      const opened = openSync(walPath, 'r');
      walFile = { fd: opened, dev: st.dev, ino: st.ino };
    }
    return walFile.fd;
  };
  const syncWal = (): Promise<void> =>
    new Promise((resolve, reject) => {
      let fd: number;
      try {
        fd = walFd();
      } catch (e) {
        reject(e);
        return;
      }
      syncFile(fd, (e) => (e ? reject(e) : resolve()));
    });
  if (wal) {
    // The log's descriptor opened with the store, not with its first commit: a process out of
    // descriptors then (EMFILE under a connection flood) would otherwise fail that sync, and a
    // failed sync refuses every later write. A first read makes SQLite create the log.
    try {
      db.prepare('SELECT 1 FROM sqlite_master LIMIT 1').get();
      walFd();
    } catch {
      // left to the first syncOffLoop commit (which fails, and says why, if it still cannot)
    }
  }

  /** False from a write refused for lack of space until a write commits again (`Database.writable`). */
  let writable = true;
  /** Runs a driver call, turning driver errors into domain errors (storage/errors.ts). */
  const guarded = <T>(call: () => T): T => {
    try {
      return call();
    } catch (e) {
      const mapped = toStorageError(e);
      if (isStorageFull(mapped)) writable = false;
      throw mapped;
    }
  };
  /** The open transaction wrote something (its commit then proves the store writable). */
  let wrote = false;
  /** The open transaction's scope, told of the rows it changes (`Transaction.firstLock`). */
  let openScope: TxScope | undefined;
  const wrote1 = (st: Statement, sql: string, rows: number): void => {
    if (st.readonly) return;
    if (db.inTransaction) {
      wrote = true;
      // Only a statement that changes rows: SQLite reports the last such statement's count for
      // any other (SAVEPOINT, RELEASE), which would look like a lock taken.
      if (rows > 0 && CHANGES_ROWS.test(sql)) openScope?.took(sql);
    } else writable = true; // an autocommit write succeeded
  };

  const prepare = (sql: string, params: readonly SqlValue[]): { st: Statement; args: SqlValue[] } => {
    let p = cache.get(sql);
    if (!p) {
      const { text, order } = toSqlite(sql);
      p = { st: guarded(() => db.prepare(text)), order };
      if (cache.size > 500) cache.clear();
      cache.set(sql, p);
    }
    refuseNulText(params);
    // After a failed sync of the log nothing more is written (see `syncFailure`), autocommit
    // writes included: only reads still answer.
    if (syncFailure !== undefined && !p.st.readonly) throw syncFailure;
    return { st: p.st, args: p.order.map((i) => params[i] ?? null) };
  };
  const q: Queryable = {
    async all<T>(sql: string, params: readonly SqlValue[] = []) {
      const { st, args } = prepare(sql, params);
      if (st.reader) {
        const rows = guarded(() => st.all(...args) as T[]);
        wrote1(st, sql, rows.length);
        return rows;
      }
      // RETURNING-less write through all(): run it, no rows
      const { changes } = guarded(() => st.run(...args));
      wrote1(st, sql, changes);
      return [];
    },
    async get<T>(sql: string, params: readonly SqlValue[] = []) {
      const { st, args } = prepare(sql, params);
      if (!st.reader) {
        const { changes } = guarded(() => st.run(...args));
        wrote1(st, sql, changes);
        return undefined;
      }
      const row = guarded(() => st.get(...args) as T | undefined);
      wrote1(st, sql, row === undefined ? 0 : 1);
      return row;
    },
    async run(sql: string, params: readonly SqlValue[] = []): Promise<RunResult> {
      const { st, args } = prepare(sql, params);
      // A statement that returns rows (SELECT, or a write with RETURNING): count them, as PostgreSQL's rowCount does.
      const changes = st.reader
        ? guarded(() => st.all(...args).length)
        : guarded(() => st.run(...args).changes);
      wrote1(st, sql, changes);
      return { changes };
    },
  };
  // Code running inside a transaction (same async context) goes straight through;
  // anything else waits for the open transaction so it never reads or writes inside it.
  const inTx = createTxContext();
  /** The transaction this code runs in, unless it has ended (then: outside any, tx-scope.ts). */
  const liveTx = () => inTx.live();
  const wait = async (): Promise<void> => {
    if (mutex.locked && liveTx() === undefined) await mutex.idle();
  };
  const outside: Queryable = {
    async all(sql, params) {
      await wait();
      return q.all(sql, params);
    },
    async get(sql, params) {
      await wait();
      return q.get(sql, params);
    },
    async run(sql, params) {
      await wait();
      return q.run(sql, params);
    },
  };
  const transaction = async <T>(
    fn: (tx: Transaction) => Promise<T>,
    options: { relaxed?: boolean; syncOffLoop?: boolean; explicit?: boolean } = {},
  ): Promise<T> => {
    const current = liveTx();
    if (current) return fn(current); // nested: join the open transaction
    const release = await mutex.acquire();
    const offLoop = options.syncOffLoop === true && wal && !options.relaxed;
    let normal = options.relaxed === true || offLoop;
    try {
      // Inside the try: if it throws (the connection closed), the finally still releases the mutex.
      if (normal) setSync('NORMAL');
      if (syncFailure !== undefined) throw syncFailure;
      guarded(() => db.exec('BEGIN IMMEDIATE'));
      wrote = false;
      const scope = createTxScope((sql) => q.run(sql));
      openScope = scope;
      // SQLite serialises writers already: a named lock costs nothing, but is noted for the lock order.
      const tx: Transaction = { ...q, lock: async (name) => scope.took(name), ...scope.members };
      try {
        const result = await inTx.run(
          tx,
          () =>
            scope.complete(
              () => fn(tx),
              () => {
                // SQLite rolls the whole transaction back on some errors (SQLITE_FULL, IOERR,
                // NOMEM): a function that caught one and went on must not commit what is left.
                if (!db.inTransaction)
                  throw storageRolledBack(new Error('SQLite rolled the transaction back'));
              },
            ),
          options.explicit,
        );
        guarded(() => db.exec('COMMIT'));
        if (offLoop) {
          // Durable before anyone hears of it: the connection stays held (reads and writes of
          // other callers wait for the mutex) until the log is on disk.
          setSync('FULL');
          normal = false;
          try {
            await syncWal();
          } catch (e) {
            syncFailure = toStorageError(e);
            writable = false;
            onSyncFailure?.(syncFailure);
            throw syncFailure;
          }
        }
        if (wrote) writable = true;
        return result;
      } catch (e) {
        // SQLite may have rolled back already (SQLITE_FULL, SQLITE_IOERR, SQLITE_BUSY do): then
        // there is nothing left to undo. A failing ROLLBACK must not hide the error that caused it.
        if (db.inTransaction) {
          try {
            db.exec('ROLLBACK');
          } catch {
            // already rolled back, or unusable: the original error says why
          }
        }
        throw e;
      }
    } finally {
      openScope = undefined;
      if (normal && db.open) setSync('FULL');
      release();
    }
  };
  let closed = false;
  return {
    dialect: 'sqlite',
    ...outside,
    transaction,
    get writable() {
      return writable;
    },
    probeWrite: () => probeWrite({ transaction }),
    current: () => liveTx(),
    async exclusive(_name: string, fn: () => Promise<void>): Promise<boolean> {
      await fn(); // one node: nobody else to exclude
      return true;
    },
    async ping() {
      try {
        db.prepare('SELECT 1').get();
        return true;
      } catch {
        return false;
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      // Wait for every transaction already started (queued ones too), then close.
      const release = await mutex.acquire();
      db.close();
      if (walFile) closeSync(walFile.fd);
      walFile = undefined;
      release();
    },
  };
}
