import type { Clock } from '../lib/clock.js';

export interface RateLimit {
  /** Sustained requests per second (the bucket also holds this many for bursts). */
  perSecond: number;
  /** Requests in progress at once. */
  concurrent: number;
}

/** Azure IMDS's limits: 20 requests per second and 5 at a time, per host. */
export const DEFAULT_RATE_LIMIT: RateLimit = Object.freeze({ perSecond: 20, concurrent: 5 });

/**
 * A token bucket plus a concurrency cap. `acquire` answers 0 when the request
 * may proceed (then `release` it when done), else the seconds to wait (for
 * Retry-After). No allocation per request: this sits on the hot path.
 */
export function createRateLimiter(limit: RateLimit, clock: Clock) {
  let tokens = limit.perSecond;
  // Monotonic: after a backwards wall-clock step the bucket would not refill until the clock
  // caught up again (every client locked out with 429).
  let last = clock.monotonic();
  let active = 0;
  return {
    acquire(): number {
      const now = clock.monotonic();
      tokens = Math.min(limit.perSecond, tokens + ((now - last) / 1000) * limit.perSecond);
      last = now;
      if (active >= limit.concurrent) return 1;
      if (tokens < 1) return Math.max(1, Math.ceil((1 - tokens) / limit.perSecond));
      tokens -= 1;
      active++;
      return 0;
    },
    release(): void {
      if (active > 0) active--;
    },
    get active(): number {
      return active;
    },
  };
}
