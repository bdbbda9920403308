import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createEndpointLimiter as identityLimiter } from '../src/identity-endpoint/rate-limit.js';
import { fakeClock } from '../src/lib/clock.js';
import { createRateLimiter } from '../src/lib/rate-limit.js';

// A backwards wall-clock step (NTP correction, a VM resumed, an operator setting the date) must
// not lock clients out: the token buckets measure elapsed time on the monotonic clock.
describe('rate limiters use the monotonic clock', () => {
  test('fake clock: set() steps wall time only, advance() moves both', () => {
    const clock = fakeClock(1_000_000);
    const m0 = clock.monotonic();
    clock.set(1_000_000 - 3_600_000);
    assert.equal(clock.now(), 1_000_000 - 3_600_000);
    assert.equal(clock.monotonic(), m0);
    clock.advance(500);
    assert.equal(clock.monotonic(), m0 + 500);
  });

  test('per-address/per-principal buckets refill after the wall clock steps back an hour', () => {
    const clock = fakeClock(Date.UTC(2026, 0, 1));
    const limiter = createRateLimiter({ ratePerSecond: 1, burst: 2, clock });
    limiter.take('a');
    limiter.take('a');
    assert.throws(() => limiter.take('a'), /Too many requests/);
    clock.set(clock.now() - 3_600_000);
    clock.advance(2_000);
    limiter.take('a'); // refilled: 2 s of monotonic time have passed
    limiter.take('a');
  });

  test('identity endpoint bucket refills after the wall clock steps back an hour', () => {
    const clock = fakeClock(Date.UTC(2026, 0, 1));
    const limiter = identityLimiter({ perSecond: 2, concurrent: 100 }, clock);
    assert.equal(limiter.acquire(), 0);
    assert.equal(limiter.acquire(), 0);
    assert.ok(limiter.acquire() > 0, 'empty bucket');
    clock.set(clock.now() - 3_600_000);
    clock.advance(1_000);
    assert.equal(limiter.acquire(), 0, 'refilled after 1 s of monotonic time');
    assert.equal(limiter.acquire(), 0);
  });
});
