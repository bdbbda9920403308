import { AsyncResource } from 'node:async_hooks';
import type { Database, SavepointOutcome, Transaction } from './port.js';

/**
 * Group commit of durable writes, layered on the storage port.
 *
 * On SQLite every commit is an fsync (`synchronous=FULL`): one per request caps writes at the
 * disk's flush rate. Here the writes that arrive within two event-loop turns share one
 * transaction, so one fsync, and that fsync runs on libuv's thread pool (`syncOffLoop`, sqlite.ts)
 * instead of blocking the event loop, so requests that need no database go on meanwhile. The batch
 * waits one turn more than it must (PostgreSQL's `commit_delay`, counted in turns): requests whose
 * bytes are already read join it instead of waiting a whole commit and sync for the next one, so
 * a busy server syncs less often per write (docs/performance.md, "Client assertions, session 10");
 * an idle loop runs that turn at once:
 *
 * - each write runs, in arrival order, inside its own SAVEPOINT of the batch's transaction: a
 *   write that throws (a constraint, a domain refusal) rolls back to its savepoint and fails only
 *   its own caller; the others' writes stay in the batch;
 * - every caller is answered only after the COMMIT that holds its write: success is never
 *   acknowledged before it is durable;
 * - when the batch cannot commit (or a savepoint cannot be rolled back), every caller of the
 *   batch fails with that error and none of their writes is kept;
 * - one batch runs at a time; writes arriving meanwhile form the next batch.
 *
 * On PostgreSQL a write is simply its own transaction: the pool overlaps commits (each waits for
 * the WAL flush on its own connection without blocking the event loop) and the server already
 * groups concurrent WAL flushes, so batching would add latency and nothing else (docs/storage.md).
 *
 * Called inside an open transaction (a manifest applied as one transaction), `run` joins that
 * transaction instead: its write is durable when that transaction commits.
 */
export interface GroupCommit {
  /**
   * Runs `fn` in the next batch; resolves with its result once that batch has committed.
   *
   * `single: true` says `fn` runs exactly one statement that fails only for a fault of the store
   * itself (e.g. `INSERT … ON CONFLICT DO NOTHING`): it gets no savepoint of its own (two
   * statements fewer), and if it throws anyway the whole batch fails — every caller gets the
   * error and none of the batch's writes is kept, as when the batch cannot commit.
   *
   * `explicit: true` says `fn` reaches the store only through the `tx` it is handed (Database.
   * transaction's `explicit`): a batch of such writes alone is not entered as an async context.
   */
  run<T>(fn: (tx: Transaction) => Promise<T>, options?: { single?: boolean; explicit?: boolean }): Promise<T>;
  /** Batches committed or failed, and writes run in them (for tests and /metrics). */
  readonly stats: { batches: number; writes: number; largest: number };
}

interface Pending {
  fn: (tx: Transaction) => Promise<unknown>;
  single: boolean;
  explicit: boolean;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

type Outcome = SavepointOutcome<unknown>;

/**
 * Batches start from an empty async context, not the first caller's (which may carry the
 * adapter's open-transaction marker, or a request's logging context, into everybody's write).
 */
const root = new AsyncResource('latchkey.groupCommit');

/** Creates a group committer for `db` (use `groupCommitFor` to share one per database). */
export function createGroupCommit(
  db: Database,
  options: { schedule?: (flush: () => void) => void } = {},
): GroupCommit {
  const stats = { batches: 0, writes: 0, largest: 0 };
  if (db.dialect === 'postgres') {
    return {
      stats,
      run: (fn, options = {}) => {
        const open = db.current();
        if (open) return fn(open);
        stats.batches++;
        stats.writes++;
        stats.largest = Math.max(stats.largest, 1);
        return db.transaction(fn, { explicit: options.explicit === true });
      },
    };
  }
  const schedule =
    options.schedule ?? ((flush) => root.runInAsyncScope(() => setImmediate(() => setImmediate(flush))));
  let queue: Pending[] = [];
  let scheduled = false;
  let running = false;

  const kick = () => {
    if (scheduled || running || queue.length === 0) return;
    scheduled = true;
    schedule(() => {
      scheduled = false;
      void flush();
    });
  };

  const flush = async () => {
    if (running || queue.length === 0) return;
    running = true;
    const batch = queue;
    queue = [];
    stats.batches++;
    stats.writes += batch.length;
    stats.largest = Math.max(stats.largest, batch.length);
    const outcomes: Outcome[] = [];
    try {
      await db.transaction(
        async (tx) => {
          if (batch.length === 1) {
            // Alone in its batch: no savepoint needed, its failure rolls the transaction back.
            outcomes.push({ ok: true, value: await batch[0]!.fn(tx) });
            return;
          }
          for (const p of batch) {
            // Each write keeps the lock order on its own, as its own transaction would (port.ts).
            tx.restartLockRecord();
            if (p.single) {
              // No savepoint: if it throws, the transaction (so the whole batch) fails with it.
              outcomes.push({ ok: true, value: await p.fn(tx) });
              continue;
            }
            // Its own savepoint: a throw rolls back its writes only. If the rollback itself fails
            // (SQLite rolled the whole transaction back), that throws here: the batch fails as a whole.
            outcomes.push(await tx.savepoint(() => p.fn(tx)));
          }
        },
        // The batch's fsync off the event loop (sqlite.ts): requests that need no database go on
        // meanwhile; the callers are still answered only once the batch is on disk.
        { syncOffLoop: true, explicit: batch.every((p) => p.explicit) },
      );
    } catch (error) {
      // Not committed: nobody's write is kept, so nobody is acknowledged. A lone write's own error
      // is passed through unchanged (the same as a transaction of its own).
      for (const p of batch) p.reject(error);
      running = false;
      kick();
      return;
    }
    batch.forEach((p, i) => {
      const o = outcomes[i]!;
      if (o.ok) p.resolve(o.value);
      else p.reject(o.error);
    });
    running = false;
    kick();
  };

  return {
    stats,
    run<T>(
      fn: (tx: Transaction) => Promise<T>,
      options: { single?: boolean; explicit?: boolean } = {},
    ): Promise<T> {
      const open = db.current();
      if (open) return fn(open);
      return new Promise<T>((resolve, reject) => {
        queue.push({
          fn,
          single: options.single === true,
          explicit: options.explicit === true,
          resolve: resolve as (v: unknown) => void,
          reject,
        });
        kick();
      });
    },
  };
}

const shared = new WeakMap<Database, GroupCommit>();

/** The one group committer of `db`, shared by every writer of that database. */
export function groupCommitFor(db: Database): GroupCommit {
  let g = shared.get(db);
  if (!g) {
    g = createGroupCommit(db);
    shared.set(db, g);
  }
  return g;
}
