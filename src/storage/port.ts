/**
 * The storage port. Domain code talks SQL through this narrow interface and
 * never imports a driver. SQL is written once in the common dialect of
 * SQLite and PostgreSQL with `$1, $2, ...` placeholders; adapters translate.
 *
 * Portable conventions (see docs/storage.md):
 * - times are epoch milliseconds in BIGINT columns (returned as numbers);
 * - booleans are INTEGER 0/1;
 * - binary is `{{blob}}` in migrations (BLOB / BYTEA), returned as Buffer;
 * - JSON is TEXT.
 */
export type SqlValue = string | number | Buffer | null;

export interface RunResult {
  changes: number;
}

export interface Queryable {
  all<T>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
  get<T>(sql: string, params?: readonly SqlValue[]): Promise<T | undefined>;
  run(sql: string, params?: readonly SqlValue[]): Promise<RunResult>;
}

export interface Transaction extends Queryable {
  /**
   * Serialise with every other transaction that takes the same named lock,
   * until this transaction ends (PostgreSQL advisory xact lock; SQLite already
   * serialises writers, so it is free there).
   */
  lock(name: string): Promise<void>;
  /**
   * Notes that code running in this transaction leaves for later code of the same transaction
   * (keys name their owner, e.g. `latchkey:audit-head`; values are replaced, never changed in
   * place). A savepoint rolled back takes the notes set inside it back with its writes.
   */
  readonly notes: { get(key: string): unknown; set(key: string, value: unknown): void };
  /**
   * Runs `hook` once, inside this transaction, after everything else of it and just before its
   * COMMIT (a hook that throws rolls the transaction back). A second registration under the same
   * key is ignored; one made inside a savepoint that is rolled back is undone with it. A nested
   * transaction joins the open one, so its hooks run at the outermost commit (the audit head is
   * written then: read inside the transaction before that, it is the head as it was).
   */
  beforeCommit(key: string, hook: () => Promise<void>): void;
  /**
   * Runs `fn` inside a savepoint and says how it went: when it throws, its writes, notes and hooks
   * are rolled back and the outcome carries the error; the transaction goes on. Throws only when
   * the rollback itself fails (SQLite has then rolled back the whole transaction). One savepoint at
   * a time per level: `fn` may open its own, not run two side by side.
   */
  savepoint<T>(fn: () => Promise<T>): Promise<SavepointOutcome<T>>;
  /**
   * The first lock this transaction took, or undefined while it has taken none: the name given to
   * `lock`, or the text of the first statement that changed rows (on PostgreSQL it holds their row
   * locks, and the keys it inserted, until the transaction ends). Lock order (docs/storage.md): a
   * transaction that appends to the audit log takes the log's lock before any other, so the audit
   * log checks this when it first takes its lock. Recorded on SQLite too (where every writer is
   * serialised anyway), so the suite finds a wrong order on either store.
   */
  firstLock(): string | undefined;
  /**
   * Starts that record over (`firstLock` is undefined again, the locks stay held): the group
   * commit runs each write of a batch as the transaction of its own it would be on PostgreSQL,
   * which batches nothing (group-commit.ts).
   */
  restartLockRecord(): void;
}

/** What {@link Transaction.savepoint} says of its function: its value, or the error it threw. */
export type SavepointOutcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

export type Dialect = 'sqlite' | 'postgres';

export interface Database extends Queryable {
  readonly dialect: Dialect;
  /**
   * Runs `fn` in one transaction: commits if it resolves, rolls back if it throws.
   * `relaxed: true` trades durability against power loss for speed on this one
   * commit (SQLite `synchronous=NORMAL`, PostgreSQL `synchronous_commit=off`):
   * still atomic and safe against a process crash. Only for records whose loss in
   * a power failure is acceptable (audit records of reads); never for acknowledged writes.
   *
   * `syncOffLoop: true` (SQLite; ignored on PostgreSQL, whose commits never block the event loop)
   * is as durable as a plain commit, but the commit's flush to disk does not block the event loop:
   * SQLite commits without syncing and the write-ahead log is then `fdatasync`ed on libuv's thread
   * pool — exactly the sync `synchronous=FULL` makes at a commit — while the connection stays held,
   * so nothing reads the transaction's effects before they are durable. The promise resolves only
   * after that sync; if it fails, it rejects and the store refuses every later transaction
   * (a failed fsync leaves the file's state unknown). Used by the group commit (group-commit.ts).
   *
   * `explicit: true` promises that `fn`, and all the code it runs, reaches the store only through
   * the `tx` it is handed. The transaction is then not entered as an async context: code it runs
   * is not "inside" for `current()`, a nested `transaction()` or the Database's own queries — on
   * SQLite such a query would wait for this very transaction, a deadlock. What it saves: no
   * context tracking for the transaction, which on Node 20 costs every promise of the process
   * while any transaction is open (tx-scope.ts). For hot paths whose every statement is in view
   * (the audit log's batches, a client assertion's jti).
   */
  transaction<T>(
    fn: (tx: Transaction) => Promise<T>,
    options?: { relaxed?: boolean; syncOffLoop?: boolean; explicit?: boolean },
  ): Promise<T>;
  /**
   * False once a write was refused because the store is full or cannot write (`StorageFull`),
   * until a write commits again (the next request's, or `probeWrite`'s). Readiness reads it.
   */
  readonly writable: boolean;
  /** A small real write (a 16 KiB row in `meta`, written and removed in one transaction); true when it committed. */
  probeWrite(): Promise<boolean>;
  /** The transaction open in the caller's async context, if any (group commit joins it). */
  current(): Transaction | undefined;
  /** True when the database answers (readiness). */
  ping(): Promise<boolean>;
  /**
   * Runs `fn` unless another node runs something under the same `name` now (false then, `fn` not
   * run). PostgreSQL: a session-level advisory lock (`pg_try_advisory_lock`), taken without
   * waiting on a connection of its own and held only while `fn` runs; `fn` itself runs outside any
   * transaction, so each of its writes commits on its own and holds no lock of its neighbours
   * (a background job's work: docs/storage.md). A lost connection ends the lock. SQLite (one node):
   * runs `fn`.
   */
  exclusive(name: string, fn: () => Promise<void>): Promise<boolean>;
  close(): Promise<void>;
}

/** Migration: SQL statements separated by `;` at line ends; `{{blob}}` and `{{bigserial}}` are dialect words. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
  /** PostgreSQL's own SQL, where the dialects must differ (then `sql` is SQLite's alone). */
  postgresSql?: string;
}

export function dialectSql(sql: string, dialect: Dialect): string {
  return sql
    .replaceAll('{{blob}}', dialect === 'sqlite' ? 'BLOB' : 'BYTEA')
    .replaceAll(
      '{{bigserial}}',
      dialect === 'sqlite' ? 'INTEGER PRIMARY KEY AUTOINCREMENT' : 'BIGSERIAL PRIMARY KEY',
    );
}

export function splitStatements(sql: string): string[] {
  return sql
    .split(/;\s*\n/)
    .map((s) => s.trim().replace(/;$/, ''))
    .filter((s) => s.length > 0 && !/^(--[^\n]*\n?)+$/.test(s));
}
