import { createECDH, type ECDH, randomFillSync } from 'node:crypto';
import type { EcCurves } from './ec-curves.js';
import { EC_CURVES } from './key-material.js';
import type { Curve } from './key-model.js';

/**
 * ECDSA over a caller-supplied digest (Key Vault signs digests, not messages)
 * with the secret-dependent scalar multiplication done by OpenSSL.
 *
 * Node's `crypto.sign` always hashes its input, so it cannot sign a digest.
 * What costs time in ECDSA is the nonce point R = k·G; OpenSSL computes it in
 * constant time when it generates an ECDH key pair (`EC_KEY_generate_key`: k
 * drawn uniformly from [1, n−1] by the private DRBG, then a constant-time
 * ladder, or the constant-time P-256 `nistz256` tables). The ECDH key pair *is*
 * (k, R). The rest is a few multiplications mod n, done as @noble/curves does
 * them in its own `sign`, blinded as noble cites (TCHES, article 7337): with a fresh random b,
 *   s = (b·k)⁻¹ · (b·z + (b·d)·r) mod n,
 * so the modular inversion, whose loop count depends on its input (Minerva),
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

/** CSPRNG bytes from a refilled pool (one `randomFillSync` per 64 signatures, as `randomUUID` does). */
const pool = Buffer.alloc(64 * 66);
let poolOffset = pool.length;
function random(len: number): Uint8Array {
  if (poolOffset + len > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const out = pool.subarray(poolOffset, poolOffset + len);
  poolOffset += len;
  return out;
}

/** bits2int (RFC 6979 §2.3.2): the leftmost `nBits` bits of the digest, as an integer. */
function bits2int(lib: EcCurves, digest: Uint8Array, nBits: number): bigint {
  const z = lib.bytesToNumberBE(digest);
  const excess = digest.length * 8 - nBits;
  return excess > 0 ? z >> BigInt(excess) : z;
}

const toBytes = (v: bigint, len: number) => Buffer.from(v.toString(16).padStart(len * 2, '0'), 'hex');

/** The private scalar as the signer keeps it (parsed once per cached key). */
export const ecPrivateScalar = (lib: EcCurves, d: Uint8Array): bigint => lib.bytesToNumberBE(d);

/**
 * ECDSA signature (r‖s) of `digest` with private scalar `d` on `curve`; `lib`: the curves'
 * arithmetic (./ec-curves.ts, loaded with the key).
 */
export function ecdsaSignDigest(lib: EcCurves, curve: Curve, d: bigint, digest: Uint8Array): Buffer {
  const { bytesToNumberBE, mapHashToField } = lib;
  const { ecdh, blindLength } = nonceSource(lib, curve);
  const { bytes } = EC_CURVES[curve];
  const Fn = lib.ecdsa[curve].Point.Fn;
  const n = Fn.ORDER;
  if (!Fn.isValidNot0(d)) throw new Error('invalid private key');
  const z = Fn.create(bits2int(lib, digest, Fn.BITS));
  for (;;) {
    const R = ecdh.generateKeys(); // 04 ‖ x ‖ y: R = k·G, computed by OpenSSL in constant time
    const k = bytesToNumberBE(ecdh.getPrivateKey());
    const r = Fn.create(bytesToNumberBE(R.subarray(1, 1 + bytes)));
    if (r === 0n) continue;
    const b = bytesToNumberBE(mapHashToField(random(blindLength), n));
    const ibk = Fn.inv(Fn.mul(b, k)); // the inversion sees b·k only
    const s = Fn.create(ibk * Fn.create(Fn.mul(b, z) + Fn.mul(b, d) * r));
    if (s === 0n) continue;
    return Buffer.concat([toBytes(r, bytes), toBytes(s, bytes)]);
  }
}
