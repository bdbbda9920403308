import { performance } from 'node:perf_hooks';

/** Time source, injected everywhere so tests can freeze or advance it. */
export interface Clock {
  /** Milliseconds since the epoch (wall time: may step backwards or forwards when the system clock is set). */
  now(): number;
  /**
   * Milliseconds from an arbitrary origin that never step (monotonic): for intervals, rate limits
   * and timeouts, which a wall-clock step must not stretch or shrink.
   */
  monotonic(): number;
}

export const systemClock: Clock = { now: () => Date.now(), monotonic: () => performance.now() };

/**
 * A clock for tests: starts at `start` and moves only when told. `advance` moves both wall and
 * monotonic time; `set` steps the wall time only (as setting the system clock does).
 */
export function fakeClock(start = Date.now()): Clock & { advance(ms: number): void; set(ms: number): void } {
  let t = start;
  let m = 0;
  return {
    now: () => t,
    monotonic: () => m,
    advance(ms: number) {
      t += ms;
      m += ms;
    },
    set(ms: number) {
      t = ms;
    },
  };
}

export const seconds = (ms: number): number => Math.floor(ms / 1000);
