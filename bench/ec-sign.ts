// Micro-benchmark of ECDSA signing over a digest, as the vault's `sign` does it:
//   node --import tsx bench/ec-sign.ts [--rounds 5] [--ms 500]
// Variants, each in its own child process (so noble's precompute tables of one
// variant cannot help another), run interleaved A B C D A B C D … for --rounds
// rounds; prints the median and min–max µs per signature per curve.
//   noble        @noble/curves `sign` (W=6 base-point tables, RFC 6979 + extra entropy): before
//   noble-w8     the same with 8-bit base-point tables (`Point.BASE.precompute(8)`)
//   openssl-kG   the vault's signer: k·G by OpenSSL (ECDH key generation; P-256 nonces made 32 at a
//                time), blinded s in noble's field
//   openssl-ref  `crypto.sign` of a 32-byte message (OpenSSL's whole ECDSA, hash included): the floor
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadEcCurves } from '../src/vault/ec-curves.js';
import { ecdsaSignDigest, ecPrivateScalar } from '../src/vault/ec-sign.js';
import { EC_CURVES } from '../src/vault/key-material.js';
import type { Curve } from '../src/vault/key-model.js';

const CURVES: Curve[] = ['P-256', 'P-384', 'P-521', 'P-256K'];
const DIGEST_BYTES: Record<Curve, number> = { 'P-256': 32, 'P-384': 48, 'P-521': 64, 'P-256K': 32 };
const VARIANTS = ['noble', 'noble-w8', 'openssl-kG', 'openssl-ref'] as const;
type Variant = (typeof VARIANTS)[number];
const lib = await loadEcCurves();

function signer(variant: Variant, curve: Curve): () => unknown {
  const c = EC_CURVES[curve];
  const ecdsa = lib.ecdsa[curve];
  const key = generateKeyPairSync('ec', { namedCurve: c.node }).privateKey;
  const d = Buffer.from(key.export({ format: 'jwk' }).d!, 'base64url');
  const digest = randomBytes(DIGEST_BYTES[curve]);
  switch (variant) {
    case 'noble':
      return () => ecdsa.sign(digest, d, { prehash: false, extraEntropy: true });
    case 'noble-w8':
      ecdsa.Point.BASE.precompute(8, false);
      return () => ecdsa.sign(digest, d, { prehash: false, extraEntropy: true });
    case 'openssl-kG': {
      const scalar = ecPrivateScalar(lib, d);
      return () => ecdsaSignDigest(lib, curve, scalar, digest);
    }
    case 'openssl-ref': {
      const msg = randomBytes(32);
      const hash = { 'P-256': 'sha256', 'P-384': 'sha384', 'P-521': 'sha512', 'P-256K': 'sha256' }[curve];
      return () => sign(hash, msg, { key, dsaEncoding: 'ieee-p1363' });
    }
  }
}

/** µs per call of `fn`, run back to back for about `ms` after a warm-up. */
function usPerCall(fn: () => unknown, ms: number): number {
  const warm = performance.now() + Math.min(200, ms / 4);
  while (performance.now() < warm) fn();
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < ms) {
    for (let i = 0; i < 10; i++) fn();
    n += 10;
  }
  return ((performance.now() - t0) * 1000) / n;
}

const sorted = (v: number[]) => [...v].sort((a, b) => a - b);
const med = (v: number[]) => {
  const s = sorted(v);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

const { values } = parseArgs({
  options: { variant: { type: 'string' }, rounds: { type: 'string' }, ms: { type: 'string' } },
});
const ms = Number(values.ms ?? 500);
if (values.variant) {
  const v = values.variant as Variant;
  const out: Record<string, number> = {};
  for (const curve of CURVES) out[curve] = usPerCall(signer(v, curve), ms);
  process.stdout.write(JSON.stringify(out));
} else {
  const rounds = Number(values.rounds ?? 5);
  const results = new Map<string, number[]>();
  for (let round = 1; round <= rounds; round++) {
    for (const v of VARIANTS) {
      const out = JSON.parse(
        execFileSync(
          process.execPath,
          ['--import', 'tsx', fileURLToPath(import.meta.url), '--variant', v, '--ms', String(ms)],
          { encoding: 'utf8' },
        ),
      ) as Record<Curve, number>;
      for (const curve of CURVES) {
        const k = `${v}|${curve}`;
        results.set(k, [...(results.get(k) ?? []), out[curve]]);
      }
      process.stderr.write(`round ${round}/${rounds} ${v} done\n`);
    }
  }
  const fmt = (x: number) => x.toFixed(0);
  console.log(`µs per signature, median (min–max) of ${rounds} interleaved rounds; ${ms} ms per figure`);
  console.log(['variant', ...CURVES].map((c) => c.padEnd(20)).join(''));
  for (const v of VARIANTS) {
    const cells = CURVES.map((curve) => {
      const xs = results.get(`${v}|${curve}`)!;
      const s = sorted(xs);
      return `${fmt(med(xs))} (${fmt(s[0]!)}–${fmt(s.at(-1)!)})`.padEnd(20);
    });
    console.log(v.padEnd(20) + cells.join(''));
  }
}
