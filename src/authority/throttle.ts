import type { Limits } from '../config/index.js';
import { LatchkeyError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';

/**
 * Slows, then refuses, repeated failed client authentication. Keys are the
 * client (tenant + client id) and the caller's address; either reaching the
 * limit within the window answers 429 with Retry-After until the window ends.
 */
export function createAuthThrottle(deps: { clock: Clock; limits: Limits }) {
  const { clock, limits } = deps;
  const windows = new Map<string, { count: number; start: number }>();
  const MAX_KEYS = 100_000;

  const current = (key: string) => {
    const w = windows.get(key);
    if (!w) return undefined;
    if (clock.now() - w.start >= limits.authFailureWindowMs) {
      windows.delete(key);
      return undefined;
    }
    return w;
  };

  return {
    /** Throws 429 when any key is over its limit. */
    check(keys: readonly string[]): void {
      for (const key of keys) {
        const w = current(key);
        // An address may front many clients (NAT, CI runners): it gets 5× a single client's budget.
        const limit = key.startsWith('ip:') ? limits.authFailureLimit * 5 : limits.authFailureLimit;
        if (w && w.count >= limit) {
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
    /** Records a failure; returns how long to delay the answer (ms). */
    fail(keys: readonly string[]): number {
      let worst = 0;
      for (const key of keys) {
        let w = current(key);
        if (!w) {
          if (windows.size >= MAX_KEYS) {
            const oldest = windows.keys().next().value;
            if (oldest !== undefined) windows.delete(oldest);
          }
          w = { count: 0, start: clock.now() };
          windows.set(key, w);
        }
        w.count++;
        worst = Math.max(worst, key.startsWith('ip:') ? Math.floor(w.count / 5) : w.count);
      }
      const excess = worst - limits.authFailureSlowAfter;
      return excess > 0 ? Math.min(excess * limits.authFailureDelayMs, 2_000) : 0;
    },
    succeed(key: string): void {
      windows.delete(key);
    },
  };
}
export type AuthThrottle = ReturnType<typeof createAuthThrottle>;
