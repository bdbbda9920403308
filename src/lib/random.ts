import { randomFillSync } from 'node:crypto';

/**
 * Bytes from the CSPRNG, drawn from a pool refilled 4 KiB at a time, as Node's own `randomUUID`
 * does: each `randomBytes` call of a small size costs a trip into OpenSSL's DRBG (a few µs), which
 * per secret SET (an IV and a version id) and per token (its `uti`) showed in profiles.
 *
 * The same bytes are never handed out twice (the offset only moves forward; a refill replaces
 * the whole pool), and every call returns its own copy, so a caller may keep what it got. Use it
 * for nonces, IVs and identifiers; keys may come from here too (it is the same generator), but
 * key generation is rare enough to call `crypto.randomBytes` directly.
 */
const POOL_BYTES = 4096;
const pool = Buffer.alloc(POOL_BYTES);
let offset = POOL_BYTES;

/** `n` fresh random bytes (1 ≤ n ≤ 256; larger requests go straight to `crypto.randomFillSync`). */
export function randomBytesPooled(n: number): Buffer {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`randomBytesPooled: bad length ${n}`);
  if (n > 256) return randomFillSync(Buffer.allocUnsafe(n));
  if (offset + n > POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  const out = Buffer.allocUnsafe(n);
  pool.copy(out, 0, offset, offset + n);
  // The bytes handed out are wiped from the pool, so a later memory disclosure of the pool
  // cannot reveal an IV or id already issued (defence in depth; they are not secret keys).
  pool.fill(0, offset, offset + n);
  offset += n;
  return out;
}
