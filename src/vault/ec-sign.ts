import { createECDH, type ECDH } from 'node:crypto';
import { randomBytesPooled } from '../lib/random.js';
import type { EcCurves } from './ec-curves.js';
import { EC_CURVES } from './key-material.js';
import type { Curve } from './key-model.js';
import { modInverse } from './mod-inverse.js';

/**
 * ECDSA over a caller-supplied digest (Key Vault signs digests, not messages)
 * with the secret-dependent scalar multiplication done by OpenSSL.
 *
 * Node's `crypto.sign` always hashes its input, so it cannot sign a digest.
 * What costs time in ECDSA is the nonce point R = k·G; OpenSSL computes it in
 * constant time when it generates an ECDH key pair (`EC_KEY_generate_key`: k
 * drawn uniformly from [1, n−1] by the private DRBG, then a constant-time
 * ladder, or the constant-time P-256 `nistz256` tables). The ECDH key pair *is*
 * (k, R). The rest is a few BigInt multiplications mod n, as @noble/curves
 * does them in its own `sign`, blinded as noble cites (TCHES, article 7337): with a fresh random b,
 *   s = (b·k)⁻¹ · (b·z + (b·d)·r) mod n,
 * so the modular inversion, whose loop count depends on its input (Minerva;
 * ours is Lehmer's, ./mod-inverse.ts, variable-time like noble's `invert`),
 * only sees blinded values (uniform, independent of k), and d only enters
 * products with the random b. The private key never meets a branch or a table
 * index that depends on its value.
 *
 * Nonces are made ahead, in batches (ECDSA precomputation, as IEEE 1363 §A.16
 * and HSMs do it: nothing of (k, r) depends on the key or the digest). A batch
 * makes BATCH (k, R) pairs back to back, which keeps OpenSSL's base-point
 * table in cache (in a busy server a lone k·G costs half again as much), and
 * inverts all the b·k at once with one inversion (Montgomery's trick: the
 * product of uniform values is uniform, so the inversion still sees only
 * blinded input). A nonce is taken out of its batch before it is used and is
 * never put back, so none signs twice, whatever happens after. A nonce keeps
 * only r, b and (b·k)⁻¹, all the signature needs (the OpenSSL EC key still
 * holds the batch's last k until the next batch, as it held the last k before);
 * unused nonces are dropped NONCE_TTL_MS after their batch was made.
 * Parsing k is the one step whose time depends on k's length (Node drops its
 * leading zero bytes: about 1 k in 256 on P-256, P-384 and P-256K, about half
 * of them on P-521, whose order has a 1-bit top byte, and 1 in 512 two bytes
 * short there). In a P-256 batch it is summed over 32 nonces, and 31 of them
 * sign in later requests; the other curves parse k in the signing request, as
 * before (see docs/keys.md).
 *
 * The signature is randomized (a fresh k per call, as Azure Key Vault's are:
 * two signatures of one digest differ) and S is not normalized to the lower
 * half of the order (Key Vault does not normalize either; ES256K users who
 * need low-S normalize themselves). Output: r‖s, each `bytes` long (IEEE P1363).
 */
const OPENSSL_CURVE: Record<Curve, string> = {
  'P-256': 'prime256v1',
  'P-384': 'secp384r1',
  'P-521': 'secp521r1',
  'P-256K': 'secp256k1',
};

/**
 * Nonces per batch. P-256's k·G takes ~15 µs with OpenSSL's tables (a batch stalls its request
 * ~0.6 ms); the other curves' take 0.5–2 ms each, without tables to keep warm, so they are made
 * one at a time (a batch would only stall a request longer).
 */
const BATCH: Record<Curve, number> = { 'P-256': 32, 'P-384': 1, 'P-521': 1, 'P-256K': 1 };

/**
 * A precomputed nonce: r = (k·G).x mod n (and its fixed-width hex, the signature's first half),
 * a blinding factor b, and u = (b·k)⁻¹ mod n.
 */
interface Nonce {
  r: bigint;
  rHex: string;
  b: bigint;
  u: bigint;
}

/** Per curve: the OpenSSL EC key that makes (k, R) pairs, and the nonces made and not yet used. */
interface NonceSource {
  ecdh: ECDH;
  blindLength: number;
  ready: Nonce[];
  /** When `ready` was made (the pool's clock, ms). */
  madeAt: number;
}
const SOURCES = new Map<Curve, NonceSource>();

/**
 * Unused nonces are dropped this long after their batch was made. A nonce is as good as its k:
 * read out of memory, it gives away the key of whatever signature later uses it. Under load a
 * batch lasts milliseconds; a quiet server keeps none for longer than this.
 */
export const NONCE_TTL_MS = 10_000;
let poolClock: () => number = () => performance.now();
/** Tests: the clock that ages the pools (ms, monotonic). */
export function setNonceClock(clock: () => number): void {
  poolClock = clock;
}

/** Big-endian bytes as an integer (Node's native hex encoding: no per-byte JavaScript loop). */
const fromHex = (hex: string): bigint => (hex.length === 0 ? 0n : BigInt(`0x${hex}`));
const toHex = (bytes: Uint8Array): string =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');

/** Makes a batch of nonces (r = 0, probability ~2⁻²⁵⁶, is skipped). */
function makeNonces(src: NonceSource, curve: Curve, n: bigint, count: number): Nonce[] {
  const { ecdh, blindLength } = src;
  const bytes = EC_CURVES[curve].bytes;
  // The blinding factors' random bytes, for the whole batch at once (hex: 2 characters a byte).
  const blinds = randomBytesPooled(blindLength * count).toString('hex');
  const rs: bigint[] = [];
  const bs: bigint[] = [];
  const bks: bigint[] = [];
  while (rs.length < count) {
    // 04 ‖ x ‖ y: R = k·G, computed by OpenSSL in constant time; r = x mod n
    const r = fromHex(ecdh.generateKeys().toString('hex', 1, 1 + bytes)) % n;
    if (r === 0n) continue;
    const k = fromHex(ecdh.getPrivateKey('hex'));
    // b uniform in [1, n−1], as noble's mapHashToField draws it (from ≥ 1.5× the order's bytes)
    const at = 2 * blindLength * rs.length;
    const b = (fromHex(blinds.slice(at, at + 2 * blindLength)) % (n - 1n)) + 1n;
    rs.push(r);
    bs.push(b);
    bks.push((b * k) % n);
  }
  // Montgomery's batch inversion: prefix products, one inversion, then back down.
  const prefix: bigint[] = new Array(count);
  let acc = 1n;
  for (let i = 0; i < count; i++) {
    acc = (acc * bks[i]!) % n;
    prefix[i] = acc;
  }
  let inv = modInverse(acc, n); // the product of uniform blinded values: uniform, independent of any k
  const out: Nonce[] = new Array(count);
  for (let i = count - 1; i >= 0; i--) {
    const u = i === 0 ? inv : (inv * prefix[i - 1]!) % n;
    inv = (inv * bks[i]!) % n;
    const r = rs[i]!;
    out[i] = { r, rHex: r.toString(16).padStart(2 * bytes, '0'), b: bs[i]!, u };
  }
  return out;
}

/** The next unused nonce of `curve`, removed from the pool (a batch is made when it is empty). */
function takeNonce(lib: EcCurves, curve: Curve, n: bigint): Nonce {
  let src = SOURCES.get(curve);
  if (!src) {
    src = {
      ecdh: createECDH(OPENSSL_CURVE[curve]),
      blindLength: lib.getMinHashLength(n),
      ready: [],
      madeAt: 0,
    };
    SOURCES.set(curve, src);
  }
  const now = poolClock();
  if (src.ready.length > 0 && now - src.madeAt >= NONCE_TTL_MS) src.ready = []; // too old: dropped
  if (src.ready.length === 0) {
    src.ready = makeNonces(src, curve, n, BATCH[curve]);
    src.madeAt = now;
  }
  const nonce = src.ready.pop();
  if (!nonce) throw new Error('no nonce'); // unreachable: a batch holds at least one
  return nonce;
}

/** bits2int (RFC 6979 §2.3.2): the leftmost `nBits` bits of the digest, as an integer. */
function bits2int(digest: Uint8Array, nBits: number): bigint {
  const z = fromHex(toHex(digest));
  const excess = digest.length * 8 - nBits;
  return excess > 0 ? z >> BigInt(excess) : z;
}

/** The private scalar as the signer keeps it (parsed once per cached key). */
export const ecPrivateScalar = (lib: EcCurves, d: Uint8Array): bigint => lib.bytesToNumberBE(d);

/**
 * ECDSA signature (r‖s) of `digest` with private scalar `d` on `curve`; `lib`: the curves'
 * arithmetic (./ec-curves.ts, loaded with the key).
 */
export function ecdsaSignDigest(lib: EcCurves, curve: Curve, d: bigint, digest: Uint8Array): Buffer {
  const { bytes } = EC_CURVES[curve];
  const Fn = lib.ecdsa[curve].Point.Fn;
  const n = Fn.ORDER;
  if (!Fn.isValidNot0(d)) throw new Error('invalid private key');
  const z = Fn.create(bits2int(digest, Fn.BITS));
  for (;;) {
    const { r, rHex, b, u } = takeNonce(lib, curve, n);
    const s = (u * (((b * z) % n) + ((b * d) % n) * r)) % n;
    if (s === 0n) continue; // probability ~2⁻²⁵⁶; that nonce is spent all the same
    return Buffer.from(rHex + s.toString(16).padStart(2 * bytes, '0'), 'hex');
  }
}

/** How many nonces of `curve` are made and not yet used (tests). */
export const unusedNonces = (curve: Curve): number => SOURCES.get(curve)?.ready.length ?? 0;
