import {
  createHash,
  createHmac,
  type KeyObject,
  privateDecrypt,
  privateEncrypt,
  publicDecrypt,
  publicEncrypt,
  randomBytes,
  constants as rsa,
  timingSafeEqual,
} from 'node:crypto';
import { LatchkeyError } from '../errors/index.js';
import { type EcCurves, loadEcCurves } from './ec-curves.js';
import { ecdsaSignDigest, ecPrivateScalar } from './ec-sign.js';
import { EC_CURVES, modulusBits, type PrivateJwk, privateKeyOf, publicKeyOf } from './key-material.js';
import type { Curve, EncryptionAlg, HashName, PublicJwk, SignatureAlg } from './key-model.js';
import { SIGNATURE_ALGS } from './key-model.js';

/**
 * The cryptographic operations of Key Vault keys, over precomputed digests as
 * Azure defines them: RSA PKCS#1 v1.5 and PSS signatures (salt length = hash
 * length), ECDSA signatures as raw r||s (IEEE P1363), RSA1_5 / RSA-OAEP
 * (SHA-1) / RSA-OAEP-256 encryption. Node's `crypto.sign` always hashes its
 * input, so digests are signed with the RSA primitive (`privateEncrypt`) after
 * our own EMSA encoding (RFC 8017 §9); ECDSA signs with the nonce point from
 * OpenSSL and blinded arithmetic mod n (./ec-sign.ts), and verifies with
 * @noble/curves (public data only).
 */
export interface LoadedKey {
  jwk: PublicJwk;
  rsa?: { priv: KeyObject; pub: KeyObject; k: number; modBits: number; rejectionKey: Buffer };
  /** `d`: the private scalar, parsed once (see ./ec-sign.ts for how it is used). */
  ec?: { curve: Curve; d: bigint; pub: Uint8Array; lib: EcCurves };
}

/**
 * Parses a stored private JWK once (callers cache the result per key version). An EC key
 * carries the curves' arithmetic, loaded with the first EC key (./ec-curves.ts).
 */
export async function loadKey(p: PrivateJwk, jwk: PublicJwk): Promise<LoadedKey> {
  if (jwk.kty === 'RSA') {
    const n = Buffer.from(jwk.n, 'base64url');
    const modBits = modulusBits(n);
    const rejectionKey = createHash('sha256')
      .update('latchkey/rsa1_5-implicit-rejection/')
      .update(Buffer.from(p.d!, 'base64url'))
      .digest();
    return {
      jwk,
      rsa: { priv: privateKeyOf(p), pub: publicKeyOf(jwk), k: Math.ceil(modBits / 8), modBits, rejectionKey },
    };
  }
  const pub = Buffer.concat([Buffer.of(4), Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url')]);
  const lib = await loadEcCurves();
  return { jwk, ec: { curve: jwk.crv, d: ecPrivateScalar(lib, Buffer.from(p.d!, 'base64url')), pub, lib } };
}

const bad = (message: string) => new LatchkeyError('BadParameter', message);

const DIGEST_INFO: Record<HashName, Buffer> = {
  sha256: Buffer.from('3031300d060960864801650304020105000420', 'hex'),
  sha384: Buffer.from('3041300d060960864801650304020205000430', 'hex'),
  sha512: Buffer.from('3051300d060960864801650304020305000440', 'hex'),
};
const HASH_LEN: Record<HashName, number> = { sha256: 32, sha384: 48, sha512: 64 };

function mgf1(hash: HashName, seed: Buffer, length: number): Buffer {
  const out: Buffer[] = [];
  let total = 0;
  for (let counter = 0; total < length; counter++) {
    const c = Buffer.alloc(4);
    c.writeUInt32BE(counter);
    const block = createHash(hash).update(seed).update(c).digest();
    out.push(block);
    total += block.length;
  }
  return Buffer.concat(out).subarray(0, length);
}

/** EMSA-PSS-ENCODE (RFC 8017 §9.1.1) of a digest, salt length = hash length. */
function pssEncode(hash: HashName, mHash: Buffer, emBits: number): Buffer {
  const hLen = HASH_LEN[hash];
  const emLen = Math.ceil(emBits / 8);
  if (emLen < 2 * hLen + 2) throw bad('The key is too small for this PSS algorithm.');
  const salt = randomBytes(hLen);
  const h = createHash(hash).update(Buffer.alloc(8)).update(mHash).update(salt).digest();
  const db = Buffer.alloc(emLen - hLen - 1);
  db[emLen - 2 * hLen - 2] = 1;
  salt.copy(db, emLen - 2 * hLen - 1);
  const mask = mgf1(hash, h, db.length);
  for (let i = 0; i < db.length; i++) db[i]! ^= mask[i]!;
  db[0]! &= 0xff >>> (8 * emLen - emBits);
  return Buffer.concat([db, h, Buffer.of(0xbc)]);
}

/** EMSA-PSS-VERIFY (RFC 8017 §9.1.2), salt length = hash length. */
function pssVerify(hash: HashName, mHash: Buffer, em: Buffer, emBits: number): boolean {
  const hLen = HASH_LEN[hash];
  const emLen = Math.ceil(emBits / 8);
  if (em.length !== emLen || emLen < 2 * hLen + 2 || em[emLen - 1] !== 0xbc) return false;
  const topMask = 0xff >>> (8 * emLen - emBits);
  const masked = em.subarray(0, emLen - hLen - 1);
  const h = em.subarray(emLen - hLen - 1, emLen - 1);
  if ((masked[0]! & ~topMask & 0xff) !== 0) return false;
  const mask = mgf1(hash, h, masked.length);
  const db = Buffer.alloc(masked.length);
  for (let i = 0; i < db.length; i++) db[i] = masked[i]! ^ mask[i]!;
  db[0]! &= topMask;
  const psEnd = emLen - 2 * hLen - 2;
  for (let i = 0; i < psEnd; i++) if (db[i] !== 0) return false;
  if (db[psEnd] !== 1) return false;
  const salt = db.subarray(db.length - hLen);
  const h2 = createHash(hash).update(Buffer.alloc(8)).update(mHash).update(salt).digest();
  return timingSafeEqual(h, h2);
}

/** The raw RSA public operation on a signature (`s^e mod n`), k bytes; undefined when out of range. */
function rsaPublicRaw(r: NonNullable<LoadedKey['rsa']>, sig: Buffer): Buffer | undefined {
  if (sig.length !== r.k) return undefined;
  try {
    return publicDecrypt({ key: r.pub, padding: rsa.RSA_NO_PADDING }, sig);
  } catch {
    return undefined;
  }
}

/** Signs a digest whose length and algorithm the caller has checked against the key. */
export function signDigest(key: LoadedKey, alg: SignatureAlg, digest: Buffer): Buffer {
  const a = SIGNATURE_ALGS[alg];
  if (key.rsa) {
    const r = key.rsa;
    if (a.pss) {
      const em = pssEncode(a.hash, digest, r.modBits - 1);
      const padded = Buffer.concat([Buffer.alloc(r.k - em.length), em]);
      return privateEncrypt({ key: r.priv, padding: rsa.RSA_NO_PADDING }, padded);
    }
    return privateEncrypt(
      { key: r.priv, padding: rsa.RSA_PKCS1_PADDING },
      Buffer.concat([DIGEST_INFO[a.hash], digest]),
    );
  }
  const ec = key.ec!;
  return ecdsaSignDigest(ec.lib, ec.curve, ec.d, digest);
}

export function verifyDigest(key: LoadedKey, alg: SignatureAlg, digest: Buffer, signature: Buffer): boolean {
  const a = SIGNATURE_ALGS[alg];
  if (key.rsa) {
    const r = key.rsa;
    const m = rsaPublicRaw(r, signature);
    if (!m) return false;
    if (a.pss) {
      const emLen = Math.ceil((r.modBits - 1) / 8);
      const lead = m.subarray(0, m.length - emLen);
      if (lead.some((b) => b !== 0)) return false;
      return pssVerify(a.hash, digest, m.subarray(m.length - emLen), r.modBits - 1);
    }
    const t = Buffer.concat([DIGEST_INFO[a.hash], digest]);
    const expected = Buffer.alloc(r.k, 0xff);
    expected[0] = 0;
    expected[1] = 1;
    expected[r.k - t.length - 1] = 0;
    t.copy(expected, r.k - t.length);
    return timingSafeEqual(m, expected);
  }
  const ec = key.ec!;
  if (signature.length !== 2 * EC_CURVES[ec.curve].bytes) return false;
  try {
    return ec.lib.ecdsa[ec.curve].verify(signature, digest, ec.pub, { prehash: false, lowS: false });
  } catch {
    return false;
  }
}

const OAEP_HASH: Record<Exclude<EncryptionAlg, 'RSA1_5'>, string> = {
  'RSA-OAEP': 'sha1',
  'RSA-OAEP-256': 'sha256',
};

/** The longest plaintext an RSA key of k bytes encrypts with `alg`. */
export const maxPlaintext = (alg: EncryptionAlg, k: number): number =>
  alg === 'RSA1_5' ? k - 11 : alg === 'RSA-OAEP' ? k - 42 : k - 66;

export function rsaEncrypt(key: LoadedKey, alg: EncryptionAlg, plaintext: Buffer): Buffer {
  const r = key.rsa!;
  const max = maxPlaintext(alg, r.k);
  if (plaintext.length > max)
    throw bad(`The value is too long for ${alg} with a ${r.modBits}-bit key: at most ${max} bytes.`);
  return alg === 'RSA1_5'
    ? publicEncrypt({ key: r.pub, padding: rsa.RSA_PKCS1_PADDING }, plaintext)
    : publicEncrypt({ key: r.pub, padding: rsa.RSA_PKCS1_OAEP_PADDING, oaepHash: OAEP_HASH[alg] }, plaintext);
}

export function rsaDecrypt(key: LoadedKey, alg: EncryptionAlg, ciphertext: Buffer): Buffer {
  const r = key.rsa!;
  if (ciphertext.length !== r.k)
    throw bad(
      `Invalid length of 'value': ${ciphertext.length} bytes. A ${r.modBits}-bit key requires ${r.k} bytes, encoded with base64url.`,
    );
  if (alg === 'RSA1_5') return pkcs1Decrypt(r, ciphertext);
  try {
    return privateDecrypt(
      { key: r.priv, padding: rsa.RSA_PKCS1_OAEP_PADDING, oaepHash: OAEP_HASH[alg] },
      ciphertext,
    );
  } catch {
    throw bad(`The value could not be decrypted with this key and ${alg}.`);
  }
}

/**
 * RSAES-PKCS1-v1_5 decryption with implicit rejection (as OpenSSL 3.2+ does,
 * after the Marvin attack): a ciphertext with invalid padding does not fail,
 * it decrypts to a pseudo-random message derived from the key and the
 * ciphertext, so the answer is no padding oracle. The padding scan does not
 * stop early.
 */
function pkcs1Decrypt(r: NonNullable<LoadedKey['rsa']>, ciphertext: Buffer): Buffer {
  let em: Buffer;
  try {
    em = privateDecrypt({ key: r.priv, padding: rsa.RSA_NO_PADDING }, ciphertext);
  } catch {
    em = Buffer.alloc(r.k); // c >= n: reject like a bad padding
  }
  let good = ((em[0]! === 0 ? 1 : 0) & (em[1]! === 2 ? 1 : 0)) | 0;
  let found = 0;
  let index = 0;
  for (let i = 2; i < em.length; i++) {
    const zero = em[i] === 0 ? 1 : 0;
    const take = zero & (found ^ 1);
    index |= -take & i;
    found |= zero;
  }
  good &= found & (index >= 10 ? 1 : 0);
  const kdk = createHmac('sha256', r.rejectionKey).update(ciphertext).digest();
  const stream = (label: string, n: number) => {
    const out: Buffer[] = [];
    for (let i = 0, total = 0; total < n; i++) {
      const b = createHmac('sha256', kdk).update(`${label}/${i}`).digest();
      out.push(b);
      total += b.length;
    }
    return Buffer.concat(out).subarray(0, n);
  };
  const synthetic = stream('message', r.k - 11);
  const len = stream('length', 2).readUInt16BE(0) % (r.k - 10);
  return good ? Buffer.from(em.subarray(index + 1)) : synthetic.subarray(0, len);
}
