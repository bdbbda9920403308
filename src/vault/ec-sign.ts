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
 * only sees b·k (uniform, independent of k), and d only enters products with
 * the random b. The private key never meets a branch or a table index that
 * depends on its value.
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
 * One OpenSSL EC key per curve, regenerated for every signature (creating it
 * costs as much as generating a key pair). Signing is synchronous, so no two
 * signatures share a nonce; the last nonce stays in it until the next call.
 */
const NONCE = new Map<Curve, { ecdh: ECDH; blindLength: number }>();
function nonceSource(lib: EcCurves, curve: Curve) {
  let m = NONCE.get(curve);
  if (!m) {
    m = {
      ecdh: createECDH(OPENSSL_CURVE[curve]),
      blindLength: lib.getMinHashLength(lib.ecdsa[curve].Point.Fn.ORDER),
    };
    NONCE.set(curve, m);
  }
  return m;
}

/** Big-endian bytes as an integer (Node's native hex encoding: no per-byte JavaScript loop). */
const fromHex = (hex: string): bigint => (hex.length === 0 ? 0n : BigInt(`0x${hex}`));
const toHex = (bytes: Uint8Array): string =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');

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
  const { ecdh, blindLength } = nonceSource(lib, curve);
  const { bytes } = EC_CURVES[curve];
  const Fn = lib.ecdsa[curve].Point.Fn;
  const n = Fn.ORDER;
  if (!Fn.isValidNot0(d)) throw new Error('invalid private key');
  const z = Fn.create(bits2int(digest, Fn.BITS));
  for (;;) {
    // 04 ‖ x ‖ y, hex: R = k·G, computed by OpenSSL in constant time
    const R = ecdh.generateKeys('hex');
    const k = fromHex(ecdh.getPrivateKey('hex'));
    const r = fromHex(R.slice(2, 2 + 2 * bytes)) % n;
    if (r === 0n) continue;
    // b uniform in [1, n−1], as noble's mapHashToField draws it (from ≥ 1.5× the order's bytes)
    const b = (fromHex(randomBytesPooled(blindLength).toString('hex')) % (n - 1n)) + 1n;
    const ibk = modInverse((b * k) % n, n); // the inversion sees b·k only (variable-time on it)
    const s = (ibk * (((b * z) % n) + ((b * d) % n) * r)) % n;
    if (s === 0n) continue;
    const len = 2 * bytes;
    return Buffer.from(r.toString(16).padStart(len, '0') + s.toString(16).padStart(len, '0'), 'hex');
  }
}
