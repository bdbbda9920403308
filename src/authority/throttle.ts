import type { Limits } from '../config/index.js';
import { LatchkeyError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import { authFailureStore } from '../storage/authority/auth-failure-store.js';
import type { Database } from '../storage/port.js';

/** Where the throttle reports that the shared count could not be written (a pino logger fits). */
export interface ThrottleLog {
  warn(obj: object, msg: string): void;
}

/**
 * Slows, then refuses, repeated failed client authentication. Keys are the
 * client (tenant + client id, or tenant + user name) and the caller's address;
 * either reaching the limit within the window answers 429 with Retry-After
 * until the window ends.
 *
 * Counts are kept in memory and, with a database, in the table `auth_failures`
 * that every node shares: each failure adds one there, and a node that sees
 * the shared count reach the limit refuses the key for the rest of the window.
 * So with N nodes behind a balancer an attacker gets the limit plus at most one
 * try per other node, not N times the limit. Checking stays in memory (no
 * database read on the token endpoint's hot path); only failures write.
 */
export function createAuthThrottle(deps: { clock: Clock; limits: Limits; db?: Database; log?: ThrottleLog }) {
  const { clock, limits, db, log } = deps;
  const windows = new Map<string, { count: number; start: number }>();
  const MAX_KEYS = 100_000;

  // An address may front many clients (NAT, CI runners): it gets 5× a single client's budget.
  const limitOf = (key: string) =>
    key.startsWith('ip:') ? limits.authFailureLimit * 5 : limits.authFailureLimit;

  const current = (key: string) => {
    const w = windows.get(key);
    if (!w) return undefined;
    if (clock.now() - w.start >= limits.authFailureWindowMs) {
      windows.delete(key);
      return undefined;
    }
    return w;
  };
  const remember = (key: string, w: { count: number; start: number }) => {
    if (!windows.has(key) && windows.size >= MAX_KEYS) {
      const oldest = windows.keys().next().value;
      if (oldest !== undefined) windows.delete(oldest);
    }
    windows.set(key, w);
  };

  /** Adds one failure to the shared count; returns it (and its window), or undefined without a database. */
  const shared = async (key: string): Promise<{ count: number; start: number } | undefined> => {
    if (!db) return undefined;
    const now = clock.now();
    try {
      return await authFailureStore.addFailure(db, key, now, now - limits.authFailureWindowMs);
    } catch (e) {
      // The in-memory count still protects this node; the shared one resumes with the next failure.
      log?.warn({ err: e }, 'authentication throttle: the shared failure count could not be written');
      return undefined;
    }
  };

  return {
    /** Throws 429 when any key is over its limit. */
    check(keys: readonly string[]): void {
      for (const key of keys) {
        const w = current(key);
        if (w && w.count >= limitOf(key)) {
          const retry = Math.max(1, Math.ceil((w.start + limits.authFailureWindowMs - clock.now()) / 1000));
          throw new LatchkeyError(
            'temporarily_unavailable',
            'Too many failed authentication attempts; try again later.',
            {
              status: 429,
              headers: { 'Retry-After': String(retry) },
              aadCodes: [50053],
            },
          );
        }
      }
    },
    /** Records a failure here and in the shared count; returns how long to delay the answer (ms). */
    async fail(keys: readonly string[]): Promise<number> {
      let worst = 0;
      for (const key of keys) {
        let w = current(key);
        if (!w) {
          w = { count: 0, start: clock.now() };
          remember(key, w);
        }
        w.count++;
        // The cluster's count wins when it is higher (failures other nodes saw in this window).
        const all = await shared(key);
        if (all && all.count > w.count) {
          w.count = all.count;
          w.start = all.start;
        }
        worst = Math.max(worst, key.startsWith('ip:') ? Math.floor(w.count / 5) : w.count);
      }
      const excess = worst - limits.authFailureSlowAfter;
      return excess > 0 ? Math.min(excess * limits.authFailureDelayMs, 2_000) : 0;
    },
    /**
     * A success for a client: its count starts again. The shared count is cleared only when this
     * node saw failures for it (successes are the hot path and must not write).
     */
    /**
     * Clears the client's count. The request need not wait for the shared row to go (callers
     * leave the promise unawaited); the returned promise settles when it is gone, never rejects.
     */
    succeed(key: string): Promise<void> {
      if (!windows.delete(key) || !db) return Promise.resolve();
      return authFailureStore
        .clear(db, key)
        .catch((e) =>
          log?.warn({ err: e }, 'authentication throttle: the shared failure count could not be cleared'),
        );
    },
    /** Forgets shared counts whose window has ended (a job). */
    async prune(): Promise<number> {
      if (!db) return 0;
      return authFailureStore.prune(db, clock.now() - limits.authFailureWindowMs);
    },
  };
}
export type AuthThrottle = ReturnType<typeof createAuthThrottle>;
