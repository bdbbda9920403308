import { AsyncLocalStorage } from 'node:async_hooks';
import type { SavepointOutcome, Transaction } from './port.js';

/**
 * What a transaction keeps besides its statements, shared by the adapters: notes that code running
 * in the transaction leaves for later code of the same transaction, hooks run just before it
 * commits, and savepoints that roll both back with the writes.
 *
 * The audit log uses it to write its chain head once per transaction instead of once per event: a
 * group-committed batch appends the events of all its writes, each in its own savepoint, and the
 * head is sealed and written once, before the COMMIT, from the note the last kept append left. A
 * write rolled back to its savepoint takes its note (and a hook it registered) with it, so the
 * next append goes on from the last event that was kept.
 */
export interface TxScope {
  /** The transaction's `notes`, `beforeCommit`, `savepoint` and `firstLock`, to spread into it. */
  readonly members: Pick<
    Transaction,
    'notes' | 'beforeCommit' | 'savepoint' | 'firstLock' | 'restartLockRecord'
  >;
  /**
   * The adapter's report of a lock the transaction took: a named lock's name, or the text of a
   * statement that changed rows (PostgreSQL holds their row locks until the end). The first one
   * is kept for `firstLock`.
   */
  took(lock: string): void;
  /**
   * Runs the transaction's function, then (once `stillOpen` has not thrown: the store may have
   * rolled the transaction back under a function that caught the error and went on) its hooks,
   * in the order they were first registered. The adapter commits after it.
   */
  complete<T>(fn: () => Promise<T>, stillOpen: () => void): Promise<T>;
}

/** A transaction's scope; `run` runs one statement of that transaction (SAVEPOINT and friends). */
export function createTxScope(run: (sql: string) => Promise<unknown>): TxScope {
  let notes = new Map<string, unknown>();
  let hooks = new Map<string, () => Promise<void>>();
  /** Savepoints open (one at a time per level: names are by depth). */
  let depth = 0;
  let committing = false;
  let first: string | undefined;
  return {
    took(lock) {
      first ??= lock.length > 80 ? `${lock.slice(0, 80)}…` : lock;
    },
    members: {
      firstLock: () => first,
      restartLockRecord: () => {
        first = undefined;
      },
      notes: {
        get: (key) => notes.get(key),
        set: (key, value) => {
          notes.set(key, value);
        },
      },
      beforeCommit(key, hook) {
        if (committing) throw new Error('beforeCommit: the transaction is already committing');
        if (!hooks.has(key)) hooks.set(key, hook);
      },
      async savepoint<T>(fn: () => Promise<T>): Promise<SavepointOutcome<T>> {
        const name = `latchkey_sp_${depth}`;
        const saved = { notes: new Map(notes), hooks: new Map(hooks) };
        await run(`SAVEPOINT ${name}`);
        depth++;
        let value: T;
        try {
          value = await fn();
        } catch (error) {
          depth--;
          // If this throws (SQLite rolled the whole transaction back), so does the savepoint.
          await run(`ROLLBACK TO ${name}`);
          await run(`RELEASE ${name}`);
          notes = saved.notes;
          hooks = saved.hooks;
          return { ok: false, error };
        }
        depth--;
        await run(`RELEASE ${name}`);
        return { ok: true, value };
      },
    },
    async complete(fn, stillOpen) {
      const value = await fn();
      stillOpen();
      committing = true;
      for (const hook of hooks.values()) await hook();
      return value;
    },
  };
}

/**
 * Transactions that have ended (committed or rolled back). Code still running in one's async
 * context afterwards (a promise nobody awaited, a timer started inside it) must not be taken for
 * code inside it: the adapters treat it as code outside any transaction.
 */
const ended = new WeakSet<Transaction>();

/**
 * Which transaction the running code is in, found by its async context: code a transaction's
 * function runs (and every promise it starts) is inside it; anything else is outside. Shared by
 * the adapters: SQLite lets code inside through its connection's mutex, PostgreSQL sends its
 * statements over the transaction's connection, and a nested `transaction()` joins the open one.
 *
 * On Node 20 an enabled `AsyncLocalStorage` turns on V8's promise hooks, and then every promise
 * of the process pays for them, inside a transaction or not (about 8 % of the instructions of a
 * secret GET, which opens none: docs/performance.md, "Session 13"). So the storage is enabled only
 * while a transaction is open: `run` enables it, and the last transaction to end disables it.
 * That changes no answer: once every transaction has ended, every store a context could still
 * hold is an ended transaction, which counts as none, and `getStore()` of a disabled storage is
 * `undefined`. (From Node 24 the storage is carried by V8's context frames, not promise hooks;
 * there this saves nothing and costs nothing.)
 */
export interface TxContext {
  /** The transaction this code runs in, unless it has ended (then: outside any). */
  live(): Transaction | undefined;
  /**
   * Runs `fn` inside `tx` (its async context and every one it starts), then marks `tx` ended.
   * `explicit` (Database.transaction's option): `fn` is handed `tx` and uses nothing else, so
   * the context is not entered and the storage stays as it is (disabled, when nothing else is open).
   */
  run<T>(tx: Transaction, fn: () => Promise<T>, explicit?: boolean): Promise<T>;
}

export function createTxContext(): TxContext {
  const storage = new AsyncLocalStorage<Transaction>();
  /** Transactions whose function is running (PostgreSQL runs several at once; SQLite one). */
  let open = 0;
  return {
    live() {
      const tx = storage.getStore();
      return tx !== undefined && !ended.has(tx) ? tx : undefined;
    },
    async run(tx, fn, explicit = false) {
      if (explicit) {
        try {
          return await fn();
        } finally {
          ended.add(tx);
        }
      }
      open++;
      try {
        return await storage.run(tx, fn);
      } finally {
        ended.add(tx);
        if (--open === 0) storage.disable();
      }
    },
  };
}
