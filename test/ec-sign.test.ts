// The vault's EC signing over a digest (src/vault/ec-sign.ts: nonce point by OpenSSL, blinded
// arithmetic mod n): every signature verifies with OpenSSL (node:crypto) and with @noble/curves,
// is randomized, and S is not normalized (as Azure Key Vault's). No timing.
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, randomBytes, verify } from 'node:crypto';
import { describe, test } from 'node:test';
import { loadEcCurves } from '../src/vault/ec-curves.js';
import {
  ecdsaSignDigest,
  ecPrivateScalar,
  NONCE_TTL_MS,
  setNonceClock,
  unusedNonces,
} from '../src/vault/ec-sign.js';
import { EC_CURVES } from '../src/vault/key-material.js';
import type { Curve } from '../src/vault/key-model.js';
import { modInverse } from '../src/vault/mod-inverse.js';

const lib = await loadEcCurves();

const CASES: [Curve, 'sha256' | 'sha384' | 'sha512'][] = [
  ['P-256', 'sha256'],
  ['P-384', 'sha384'],
  ['P-521', 'sha512'],
  ['P-256K', 'sha256'],
];

function keyPair(curve: Curve) {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: EC_CURVES[curve].node });
  const d = Buffer.from(privateKey.export({ format: 'jwk' }).d!, 'base64url');
  const pub = publicKey.export({ format: 'der', type: 'spki' });
  return { d: ecPrivateScalar(lib, d), publicKey, raw: lib.ecdsa[curve].getPublicKey(d, false), pub };
}

describe('EC signing over a digest (OpenSSL k·G, blinded s)', () => {
  for (const [curve, hash] of CASES) {
    test(`${curve}: 40 signatures over ${hash} digests verify with OpenSSL and noble; randomized; high S kept`, () => {
      const k = keyPair(curve);
      const { bytes } = EC_CURVES[curve];
      const ecdsa = lib.ecdsa[curve];
      const half = ecdsa.Point.Fn.ORDER >> 1n;
      let high = 0;
      for (let i = 0; i < 40; i++) {
        const message = randomBytes(20 + i);
        const digest = createHash(hash).update(message).digest();
        const sig = ecdsaSignDigest(lib, curve, k.d, digest);
        assert.equal(sig.length, 2 * bytes);
        assert.equal(
          verify(hash, message, { key: k.publicKey, dsaEncoding: 'ieee-p1363' }, sig),
          true,
          `${curve} #${i} verifies with node:crypto`,
        );
        assert.equal(ecdsa.verify(sig, digest, k.raw, { prehash: false, lowS: false }), true);
        if (BigInt(`0x${sig.subarray(bytes).toString('hex')}`) > half) high++;
      }
      // Key Vault does not normalize S: about half the signatures have S > n/2 (all 40 low: p = 2^-40).
      assert.ok(high > 0, 'some signatures keep a high S');
      const digest = createHash(hash).update('same').digest();
      const a = ecdsaSignDigest(lib, curve, k.d, digest);
      const b = ecdsaSignDigest(lib, curve, k.d, digest);
      assert.notDeepEqual(a, b, 'a fresh nonce per signature');
      assert.notDeepEqual(a.subarray(0, bytes), b.subarray(0, bytes), 'r differs: R = k·G differs');
    });
  }

  test('P-256 nonces come in batches of 32: every position of three batches signs validly, no r repeats, one nonce per signature', () => {
    const k = keyPair('P-256');
    const rs = new Set<string>();
    // Drain whatever an earlier test left, so the batches below start at a batch's first nonce.
    for (let i = 0; i < 32 && unusedNonces('P-256') > 0; i++)
      ecdsaSignDigest(lib, 'P-256', k.d, randomBytes(32));
    assert.equal(unusedNonces('P-256'), 0, 'each signature takes a nonce out of the pool');
    for (let i = 0; i < 96; i++) {
      const message = randomBytes(16);
      const digest = createHash('sha256').update(message).digest();
      const sig = ecdsaSignDigest(lib, 'P-256', k.d, digest);
      // A batch is made when the pool is empty; each signature takes exactly one nonce out of it.
      assert.equal(unusedNonces('P-256'), 31 - (i % 32), `after signature #${i}`);
      assert.equal(
        verify('sha256', message, { key: k.publicKey, dsaEncoding: 'ieee-p1363' }, sig),
        true,
        `signature #${i} (batch position ${i % 32}) verifies with node:crypto`,
      );
      rs.add(sig.subarray(0, 32).toString('hex'));
    }
    assert.equal(rs.size, 96, 'a fresh nonce (a different R) for each of 96 signatures');
  });

  test('unused nonces are dropped 10 s after their batch was made (a fake clock)', () => {
    const k = keyPair('P-256');
    let t = 1_000_000;
    setNonceClock(() => t);
    try {
      const sign = () => ecdsaSignDigest(lib, 'P-256', k.d, randomBytes(32));
      // Start from a batch made now.
      for (let i = 0; i < 32 && unusedNonces('P-256') > 0; i++) sign();
      sign();
      assert.equal(unusedNonces('P-256'), 31);
      t += NONCE_TTL_MS - 1;
      sign();
      assert.equal(unusedNonces('P-256'), 30, 'still the same batch just before the limit');
      t += 1;
      sign();
      assert.equal(unusedNonces('P-256'), 31, 'at the limit the 30 left were dropped and a new batch made');
    } finally {
      setNonceClock(() => performance.now());
    }
  });

  test('a refused private scalar takes no nonce', () => {
    const n = lib.ecdsa['P-256'].Point.Fn.ORDER;
    const k = keyPair('P-256');
    ecdsaSignDigest(lib, 'P-256', k.d, randomBytes(32));
    const before = unusedNonces('P-256');
    assert.throws(() => ecdsaSignDigest(lib, 'P-256', n, randomBytes(32)), /invalid private key/);
    assert.equal(unusedNonces('P-256'), before);
  });

  test('a digest longer than the order is truncated to its leftmost bits (bits2int), as verifiers do', () => {
    const k = keyPair('P-256');
    const digest = randomBytes(64);
    const sig = ecdsaSignDigest(lib, 'P-256', k.d, digest);
    assert.equal(lib.ecdsa['P-256'].verify(sig, digest, k.raw, { prehash: false, lowS: false }), true);
  });

  test('a private scalar outside [1, n-1] is refused', () => {
    const n = lib.ecdsa['P-256'].Point.Fn.ORDER;
    assert.throws(() => ecdsaSignDigest(lib, 'P-256', 0n, randomBytes(32)), /invalid private key/);
    assert.throws(() => ecdsaSignDigest(lib, 'P-256', n, randomBytes(32)), /invalid private key/);
  });

  test("Lehmer's inversion (the signer's b·k⁻¹) equals noble's Fn.inv on random and edge values, every curve", () => {
    for (const [curve] of CASES) {
      const Fn = lib.ecdsa[curve].Point.Fn;
      const n = Fn.ORDER;
      const edges = [
        1n,
        2n,
        3n,
        n - 1n,
        n - 2n,
        n >> 1n,
        (n >> 1n) + 1n,
        1n << BigInt(Fn.BITS - 1),
        (1n << 52n) - 1n,
        1n << 51n,
      ];
      const randoms = Array.from(
        { length: 3000 },
        () => (BigInt(`0x${randomBytes(Fn.BYTES + 8).toString('hex')}`) % (n - 1n)) + 1n,
      );
      for (const x of [...edges, ...randoms]) {
        const inv = modInverse(x, n);
        assert.equal(inv, Fn.inv(x), `${curve}: ${x}⁻¹`);
        assert.equal((inv * x) % n, 1n);
      }
      assert.equal(modInverse(n + 5n, n), Fn.inv(5n), 'reduced mod n first');
    }
    assert.equal(modInverse(3n, 7n), 5n);
    assert.throws(() => modInverse(6n, 9n), /not invertible/);
    assert.throws(() => modInverse(0n, 7n), /not invertible/);
  });
});
