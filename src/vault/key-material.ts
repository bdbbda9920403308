import {
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  type JsonWebKey,
  type KeyObject,
  privateEncrypt,
  publicDecrypt,
  randomBytes,
  constants as rsa,
  timingSafeEqual,
} from 'node:crypto';
import { promisify } from 'node:util';
import { LatchkeyError } from '../errors/index.js';
import { loadEcCurves } from './ec-curves.js';
import { type Curve, checkCurve, type KeyType, type PublicJwk, RSA_SIZES } from './key-model.js';

const generate = promisify(generateKeyPair);

/** Each curve: Node's name, coordinate length (its arithmetic: ./ec-curves.ts). */
export const EC_CURVES = {
  'P-256': { node: 'P-256', bytes: 32 },
  'P-384': { node: 'P-384', bytes: 48 },
  'P-521': { node: 'P-521', bytes: 66 },
  'P-256K': { node: 'secp256k1', bytes: 32 },
} as const satisfies Record<Curve, { node: string; bytes: number }>;

/** The private half of a key: a JWK (base64url fields, Azure's curve names). Only ever stored sealed. */
export type PrivateJwk = Record<string, string> & { kty: KeyType };

export interface KeyMaterial {
  kty: KeyType;
  jwk: PublicJwk;
  privateJwk: PrivateJwk;
}

export type KeySpec = { kty: 'RSA'; size: number; exponent: number } | { kty: 'EC'; curve: Curve };

const bad = (message: string, cause?: unknown) =>
  new LatchkeyError('BadParameter', message, cause === undefined ? {} : { cause });

const B64URL = /^[A-Za-z0-9_-]+$/;
const nodeCurve = (crv: Curve) => EC_CURVES[crv].node;
const azureCurve = (nodeName: string): Curve => (nodeName === 'secp256k1' ? 'P-256K' : checkCurve(nodeName));

/** Canonical material from a Node private key (JWK export: unsigned big-endian base64url fields). */
function materialOf(key: KeyObject): KeyMaterial {
  const j = key.export({ format: 'jwk' }) as Record<string, string>;
  if (j.kty === 'RSA') {
    const privateJwk = {
      kty: 'RSA',
      n: j.n!,
      e: j.e!,
      d: j.d!,
      p: j.p!,
      q: j.q!,
      dp: j.dp!,
      dq: j.dq!,
      qi: j.qi!,
    } as PrivateJwk;
    return { kty: 'RSA', jwk: { kty: 'RSA', n: j.n!, e: j.e! }, privateJwk };
  }
  const crv = azureCurve(j.crv!);
  return {
    kty: 'EC',
    jwk: { kty: 'EC', crv, x: j.x!, y: j.y! },
    privateJwk: { kty: 'EC', crv, x: j.x!, y: j.y!, d: j.d! } as PrivateJwk,
  };
}

/** Generates a new key pair (off the event loop: RSA 4096 takes a while). */
export async function generateMaterial(spec: KeySpec): Promise<KeyMaterial> {
  const { privateKey } =
    spec.kty === 'RSA'
      ? await generate('rsa', { modulusLength: spec.size, publicExponent: spec.exponent })
      : await generate('ec', { namedCurve: nodeCurve(spec.curve) });
  return materialOf(privateKey);
}

/** Node generates RSA keys with a 32-bit public exponent at most (`publicExponent`). */
const MAX_RSA_EXPONENT = 0xffff_ffff;
const rsaExponent = (e: string): number =>
  Number(BigInt(`0x${Buffer.from(e, 'base64url').toString('hex') || '0'}`));

/** The rule for RSA public exponents, created and imported alike (its words for messages). */
export const RSA_EXPONENT_RULE = 'an odd integer from 3 to 4294967295 (65537 is usual)';

/**
 * Whether `e` is an RSA public exponent Latchkey makes and takes: odd, from 3 to 2^32 − 1. With
 * 1 every RSA operation is the identity (a ciphertext is the plaintext, and anyone can make a
 * signature that verifies); an even one has no private exponent; Node generates none larger,
 * and a rotation makes a new key like the current one.
 */
export const isRsaExponent = (e: number): boolean =>
  Number.isSafeInteger(e) && e >= 3 && e <= MAX_RSA_EXPONENT && e % 2 === 1;

/** The generation parameters of an existing key (rotation makes a new key like it). */
export function specOf(jwk: PublicJwk): KeySpec {
  if (jwk.kty === 'EC') return { kty: 'EC', curve: jwk.crv };
  const exponent = rsaExponent(jwk.e);
  // Imported before imports were bounded: a client error, not a 500 (and the job goes on).
  if (exponent > MAX_RSA_EXPONENT)
    throw bad(
      "This key's RSA public exponent is above 2^32 − 1: a new version cannot be generated like it. Import a new version instead.",
    );
  // Imported before exponents were checked (1 or even): no new key can be made like it.
  if (!isRsaExponent(exponent))
    throw bad(
      `This key's RSA public exponent (${exponent}) is not a valid one (it must be ${RSA_EXPONENT_RULE}): a new version cannot be generated like it, and the key is not safe to use. Create a new key, or import a new version with a valid exponent.`,
    );
  return { kty: 'RSA', size: modulusBits(Buffer.from(jwk.n, 'base64url')), exponent };
}

export function modulusBits(n: Buffer): number {
  let i = 0;
  while (i < n.length && n[i] === 0) i++;
  if (i === n.length) return 0;
  return (n.length - i) * 8 - Math.clz32(n[i]!) + 24;
}

const RSA_FIELDS = ['n', 'e', 'd', 'p', 'q', 'dp', 'dq', 'qi'] as const;
const EC_FIELDS = ['x', 'y', 'd'] as const;

/**
 * Validates an imported JWK with its private parts (`PUT /keys/{name}`): RSA
 * 2048/3072/4096 with every CRT parameter and a public exponent as a created
 * key's (`isRsaExponent`), or EC on a supported curve; the private and public
 * halves must belong together.
 */
export async function importMaterial(input: Record<string, unknown>): Promise<KeyMaterial> {
  const kty = input.kty;
  if (kty === 'RSA-HSM' || kty === 'EC-HSM' || kty === 'oct' || kty === 'oct-HSM')
    throw bad(`Importing a key of type '${kty}' is not supported: import an RSA or EC key.`);
  if (kty !== 'RSA' && kty !== 'EC') throw bad("key.kty must be 'RSA' or 'EC'.");
  const fields = kty === 'RSA' ? RSA_FIELDS : EC_FIELDS;
  for (const f of fields) {
    const v = input[f];
    if (typeof v !== 'string' || v.length === 0 || v.length > 2048 || !B64URL.test(v.replace(/=+$/, '')))
      throw bad(
        f === 'd' || (kty === 'RSA' && f !== 'n' && f !== 'e')
          ? `key.${f} is required: the key to import must include its private parts, base64url-encoded.`
          : `key.${f} is required and must be base64url.`,
      );
  }
  const jwk: JsonWebKey = { kty };
  for (const f of fields) jwk[f] = (input[f] as string).replace(/=+$/, '');
  let crv: Curve | undefined;
  if (kty === 'EC') {
    if (typeof input.crv !== 'string') throw bad('key.crv is required for an EC key.');
    crv = checkCurve(input.crv);
    jwk.crv = nodeCurve(crv);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: jwk, format: 'jwk' });
  } catch (e) {
    throw bad('The key could not be imported: its parameters do not form a valid key.', e);
  }
  const m = materialOf(key);
  if (m.jwk.kty === 'RSA') {
    const bits = modulusBits(Buffer.from(m.jwk.n, 'base64url'));
    if (!(RSA_SIZES as readonly number[]).includes(bits))
      throw bad(`RSA keys of ${bits} bits are not supported: import a ${RSA_SIZES.join(', ')}-bit key.`);
    const exponent = rsaExponent(m.jwk.e);
    if (exponent > MAX_RSA_EXPONENT)
      throw bad(
        'RSA public exponents above 2^32 − 1 are not supported (65537 is usual): a new version of this key could not be generated like it.',
      );
    if (!isRsaExponent(exponent))
      throw bad(
        `The RSA public exponent (key.e) ${exponent} is not accepted: it must be ${RSA_EXPONENT_RULE}.`,
      );
    if (!rsaPairMatches(key, m.jwk))
      throw bad('The key could not be imported: its private and public parts do not match.');
  } else if (crv) {
    const { ecdsa } = await loadEcCurves();
    const d = Buffer.from(m.privateJwk.d!, 'base64url');
    let pub: Uint8Array;
    try {
      pub = ecdsa[crv].getPublicKey(d, false);
    } catch (e) {
      throw bad('The key could not be imported: key.d is not a valid private key for its curve.', e);
    }
    const expected = Buffer.concat([
      Buffer.of(4),
      Buffer.from(m.jwk.x, 'base64url'),
      Buffer.from(m.jwk.y, 'base64url'),
    ]);
    if (pub.length !== expected.length || !timingSafeEqual(Buffer.from(pub), expected))
      throw bad('The key could not be imported: its private and public parts do not match.');
  }
  return m;
}

/** A private-then-public RSA round trip: the private exponent belongs to the modulus and exponent given. */
function rsaPairMatches(key: KeyObject, jwk: { n: string; e: string }): boolean {
  try {
    const probe = randomBytes(32);
    const sig = privateEncrypt({ key, padding: rsa.RSA_PKCS1_PADDING }, probe);
    const pub = createPublicKey({ key: { kty: 'RSA', n: jwk.n, e: jwk.e }, format: 'jwk' });
    return publicDecrypt({ key: pub, padding: rsa.RSA_PKCS1_PADDING }, sig).equals(probe);
  } catch {
    return false;
  }
}

/** A Node public key from a public JWK (for local verification and encryption). */
export function publicKeyOf(jwk: PublicJwk): KeyObject {
  return jwk.kty === 'RSA'
    ? createPublicKey({ key: { kty: 'RSA', n: jwk.n, e: jwk.e }, format: 'jwk' })
    : createPublicKey({ key: { kty: 'EC', crv: nodeCurve(jwk.crv), x: jwk.x, y: jwk.y }, format: 'jwk' });
}

/** A Node private key from a stored private JWK. */
export function privateKeyOf(p: PrivateJwk): KeyObject {
  const jwk: JsonWebKey = { ...p };
  if (p.kty === 'EC') jwk.crv = nodeCurve(p.crv as Curve);
  return createPrivateKey({ key: jwk, format: 'jwk' });
}
