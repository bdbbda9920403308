import type { Clock } from '../lib/clock.js';
import type { Database } from '../storage/port.js';

/** A background job: runs every `intervalMs` with the current time. Must be idempotent and bounded per run. */
export interface Job {
  name: string;
  intervalMs: number;
  run(now: number): Promise<void>;
}

export interface RunningJobs {
  close(): Promise<void>;
}

/**
 * The background-job registry and runner. Components add their jobs at
 * composition time; `start` runs each on its interval (never overlapping
 * itself). Every node runs every job on its own timer: there is no leader. On
 * PostgreSQL each run holds a session-level advisory lock taken without waiting
 * (`Database.exclusive`), so two nodes never run a job at once: a round that finds
 * the lock taken is skipped, any other round runs (with N nodes, up to N runs per
 * interval, one after another; jobs are idempotent). The job's work runs outside any
 * transaction. On SQLite there is one node.
 */
export function createJobs(deps: { db: Database; clock: Clock }) {
  const { db, clock } = deps;
  const jobs = new Map<string, Job>();

  // Not inside a transaction: each of the job's writes commits on its own, so a job holds no
  // lock of anybody else's (the audit log's, on PostgreSQL, for its whole run) and one item that
  // fails rolls back only itself.
  const runLocked = (job: Job, now: number): Promise<boolean> =>
    db.exclusive(`latchkey:job:${job.name}`, () => job.run(now));

  const add = (job: Job): void => {
    if (jobs.has(job.name)) throw new Error(`job ${job.name} is already registered`);
    jobs.set(job.name, job);
  };

  return {
    add,
    /** Adds a job that runs `task` every `intervalMs` (what it returns, e.g. a count of rows pruned, is dropped). */
    every(name: string, intervalMs: number, task: (now: number) => Promise<unknown>): void {
      add({ name, intervalMs, run: async (now) => void (await task(now)) });
    },
    names(): string[] {
      return [...jobs.keys()];
    },
    /** Runs one job now (tests, admin). False when another node holds its lock. */
    async runNow(name: string, now = clock.now()): Promise<boolean> {
      const job = jobs.get(name);
      if (!job) throw new Error(`no job named ${name}`);
      return runLocked(job, now);
    },
    /**
     * Starts every registered job on its interval; `close` stops them and waits for runs in flight.
     * `onRun` hears each round's result (`skipped`: another node holds the job's lock);
     * `intervals` overrides intervals by job name (milliseconds).
     */
    start(opts: {
      onError: (job: string, e: unknown) => void;
      onRun?: (job: string, result: 'ok' | 'skipped' | 'error', ms: number) => void;
      intervals?: Readonly<Record<string, number>>;
    }): RunningJobs {
      let closed = false;
      const timers = new Set<NodeJS.Timeout>();
      const inFlight = new Set<Promise<unknown>>();
      const schedule = (job: Job) => {
        if (closed) return;
        const t = setTimeout(() => {
          timers.delete(t);
          const t0 = performance.now();
          const p = runLocked(job, clock.now())
            .then(
              (ran) => opts.onRun?.(job.name, ran ? 'ok' : 'skipped', performance.now() - t0),
              (e) => {
                opts.onRun?.(job.name, 'error', performance.now() - t0);
                opts.onError(job.name, e);
              },
            )
            .finally(() => {
              inFlight.delete(p);
              schedule(job);
            });
          inFlight.add(p);
        }, opts.intervals?.[job.name] ?? job.intervalMs);
        t.unref();
        timers.add(t);
      };
      for (const job of jobs.values()) schedule(job);
      return {
        async close() {
          closed = true;
          for (const t of timers) clearTimeout(t);
          timers.clear();
          await Promise.allSettled([...inFlight]);
        },
      };
    },
  };
}
export type Jobs = ReturnType<typeof createJobs>;
