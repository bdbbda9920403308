import type { Clock } from '../lib/clock.js';
import { type Bucket, takeToken } from '../lib/rate-limit.js';

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
export function createEndpointLimiter(limit: RateLimit, clock: Clock) {
  // Monotonic: after a backwards wall-clock step the bucket would not refill until the clock
  // caught up again (every client locked out with 429).
  const bucket: Bucket = { tokens: limit.perSecond, at: clock.monotonic() };
  let active = 0;
  return {
    acquire(): number {
      if (active >= limit.concurrent) return 1;
      const wait = takeToken(bucket, clock.monotonic(), limit.perSecond, limit.perSecond);
      if (wait === 0) active++;
      return wait;
    },
    release(): void {
      if (active > 0) active--;
    },
    get active(): number {
      return active;
    },
  };
}
