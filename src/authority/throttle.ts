import { createHash } from 'node:crypto';
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
 * A key as the throttle keeps it: as given up to 200 characters, else its kind (`u:`, `c:`, `ip:`)
 * and a SHA-256 of the whole. Client ids and user names come from the request (up to 16 KiB):
 * kept whole, each distinct long one would hold that much memory and a row of `auth_failures`.
 */
export const throttleKey = (key: string): string =>
  key.length <= 200
    ? key
    : `${key.slice(0, key.indexOf(':') + 1)}#${createHash('sha256').update(key).digest('hex')}`;

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
  /**
   * Guessable-credential checks in flight per key (`guard`): each counts as a failure until it
   * ends, so concurrent guesses cannot all pass `check` before the first failure is counted.
   */
  const inFlight = new Map<string, number>();
  const held = (key: string) => inFlight.get(key) ?? 0;

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

  const throttle = {
    /** Throws 429 when any key is over its limit (failures in the window plus attempts in flight). */
    check(keys: readonly string[]): void {
      for (const given of keys) {
        const key = throttleKey(given);
        const w = current(key);
        if ((w?.count ?? 0) + held(key) >= limitOf(key)) {
          const retry = w
            ? Math.max(1, Math.ceil((w.start + limits.authFailureWindowMs - clock.now()) / 1000))
            : 1; // only attempts in flight: one may end within the second
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
    /**
     * `check`, then runs `attempt` with one attempt held on each key until it settles: while it
     * runs, it counts as a failure for `check`. For low-entropy credentials (passwords, device
     * user codes), whose check is slow (scrypt) or waits on storage: without it, N concurrent
     * guesses all passed `check` before the first failure was counted. A client secret, code or
     * refresh token is not guessable, and its callers' legitimate concurrency is high: they use
     * `check` alone.
     */
    async guard<T>(keys: readonly string[], attempt: () => Promise<T>): Promise<T> {
      throttle.check(keys);
      const ks = keys.map(throttleKey);
      for (const key of ks) inFlight.set(key, held(key) + 1);
      try {
        return await attempt();
      } finally {
        for (const key of ks) {
          const n = held(key) - 1;
          if (n > 0) inFlight.set(key, n);
          else inFlight.delete(key);
        }
      }
    },
    /** Records a failure here and in the shared count; returns how long to delay the answer (ms). */
    async fail(keys: readonly string[]): Promise<number> {
      let worst = 0;
      for (const key of keys.map(throttleKey)) {
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
     * node saw failures for it (successes are the hot path and must not write). The request need
     * not wait for the shared row to go (callers leave the promise unawaited); the returned
     * promise settles when it is gone, never rejects.
     */
    succeed(client: string): Promise<void> {
      const key = throttleKey(client);
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
  return throttle;
}
export type AuthThrottle = ReturnType<typeof createAuthThrottle>;
