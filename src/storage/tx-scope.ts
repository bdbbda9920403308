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
  /** The transaction's `notes`, `beforeCommit` and `savepoint`, to spread into it. */
  readonly members: Pick<Transaction, 'notes' | 'beforeCommit' | 'savepoint'>;
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
  return {
    members: {
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
export const endTransaction = (tx: Transaction): void => {
  ended.add(tx);
};
/** `tx` unless it has ended. */
export const openTransaction = (tx: Transaction | undefined): Transaction | undefined =>
  tx !== undefined && !ended.has(tx) ? tx : undefined;
