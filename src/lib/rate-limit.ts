import { LatchkeyError } from '../errors/index.js';
import type { Clock } from './clock.js';

/** A token bucket's state: the tokens it holds, as of `at` (monotonic milliseconds). */
export interface Bucket {
  tokens: number;
  at: number;
}

/**
 * Refills `b` up to `now` (`ratePerSecond` sustained, at most `burst` held) and takes one token:
 * 0 when taken, else the whole seconds until one is there (for Retry-After). Pass monotonic time:
 * a backwards wall-clock step must not empty (or freeze) the bucket.
 */
export function takeToken(b: Bucket, now: number, ratePerSecond: number, burst: number): number {
  b.tokens = Math.min(burst, b.tokens + ((now - b.at) / 1000) * ratePerSecond);
  b.at = now;
  if (b.tokens < 1) return Math.max(1, Math.ceil((1 - b.tokens) / ratePerSecond));
  b.tokens -= 1;
  return 0;
}

/**
 * Token buckets keyed by address or principal: `ratePerSecond` sustained,
 * `burst` at once. Past that, 429 `Throttled` with Retry-After. Memory is
 * bounded: the oldest buckets are dropped beyond `maxKeys`.
 */
export function createRateLimiter(opts: {
  ratePerSecond: number;
  burst: number;
  clock: Clock;
  maxKeys?: number;
}) {
  const { ratePerSecond, burst, clock } = opts;
  const maxKeys = opts.maxKeys ?? 100_000;
  const buckets = new Map<string, Bucket>();
  return {
    /** Takes one token for `key`; throws 429 when the bucket is empty. A rate of 0 disables the limit. */
    take(key: string): void {
      if (ratePerSecond <= 0) return;
      // Monotonic: a backwards wall-clock step must not empty (or freeze) every bucket.
      const now = clock.monotonic();
      let b = buckets.get(key);
      if (!b) {
        if (buckets.size >= maxKeys) {
          const oldest = buckets.keys().next().value;
          if (oldest !== undefined) buckets.delete(oldest);
        }
        b = { tokens: burst, at: now };
        buckets.set(key, b);
      }
      const retry = takeToken(b, now, ratePerSecond, burst);
      if (retry > 0)
        throw new LatchkeyError('Throttled', 'Too many requests; retry later.', {
          headers: { 'Retry-After': String(retry) },
        });
    },
  };
}
export type RateLimiter = ReturnType<typeof createRateLimiter>;

/** The deepest nesting of arrays/objects in a parsed JSON value (iterative: no stack overflow). */
export function jsonDepth(value: unknown): number {
  let max = 0;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length) {
    const [v, d] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (d > max) max = d;
    for (const child of Object.values(v as object)) stack.push([child, d + 1]);
  }
  return max;
}
