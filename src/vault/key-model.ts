import { LatchkeyError } from '../errors/index.js';
import type { Curve, KeyOp, KeyType } from '../storage/vault/key-store.js';
import { objectKindRules } from './object-kind.js';

/**
 * Key Vault key types, curves, operations and algorithms (software-protected
 * keys, as in an Azure Key Vault "standard" vault). The types a stored key
 * version is made of (KeyType, Curve, KeyOp, PublicJwk, KeyRecord) live with
 * its store (storage/vault/key-store.ts) and are re-exported here.
 */
export type { Curve, KeyOp, KeyRecord, KeyType, PublicJwk } from '../storage/vault/key-store.js';
export type EncryptionAlg = 'RSA1_5' | 'RSA-OAEP' | 'RSA-OAEP-256';
export type SignatureAlg =
  | 'RS256'
  | 'RS384'
  | 'RS512'
  | 'PS256'
  | 'PS384'
  | 'PS512'
  | 'ES256'
  | 'ES384'
  | 'ES512'
  | 'ES256K';
export type HashName = 'sha256' | 'sha384' | 'sha512';

export const RSA_SIZES = [2048, 3072, 4096] as const;
export const CURVES: readonly Curve[] = ['P-256', 'P-384', 'P-521', 'P-256K'];
/** Azure's order of key operations in a bundle. */
export const KEY_OPS: readonly KeyOp[] = ['encrypt', 'decrypt', 'sign', 'verify', 'wrapKey', 'unwrapKey'];
export const OPS_FOR: Record<KeyType, readonly KeyOp[]> = { RSA: KEY_OPS, EC: ['sign', 'verify'] };
export const ENCRYPTION_ALGS: readonly EncryptionAlg[] = ['RSA1_5', 'RSA-OAEP', 'RSA-OAEP-256'];

/** Each signature algorithm: key type, hash (digest length), and for EC the one curve it goes with. */
export const SIGNATURE_ALGS: Record<
  SignatureAlg,
  { kty: KeyType; hash: HashName; bytes: number; curve?: Curve; pss?: true }
> = {
  RS256: { kty: 'RSA', hash: 'sha256', bytes: 32 },
  RS384: { kty: 'RSA', hash: 'sha384', bytes: 48 },
  RS512: { kty: 'RSA', hash: 'sha512', bytes: 64 },
  PS256: { kty: 'RSA', hash: 'sha256', bytes: 32, pss: true },
  PS384: { kty: 'RSA', hash: 'sha384', bytes: 48, pss: true },
  PS512: { kty: 'RSA', hash: 'sha512', bytes: 64, pss: true },
  ES256: { kty: 'EC', hash: 'sha256', bytes: 32, curve: 'P-256' },
  ES384: { kty: 'EC', hash: 'sha384', bytes: 48, curve: 'P-384' },
  ES512: { kty: 'EC', hash: 'sha512', bytes: 64, curve: 'P-521' },
  ES256K: { kty: 'EC', hash: 'sha256', bytes: 32, curve: 'P-256K' },
};

const bad = (message: string) => new LatchkeyError('BadParameter', message);

/** A key's name and version rules and errors (object-kind.ts). */
export const KEY_RULES = objectKindRules('key');
export const checkKeyName = KEY_RULES.checkName;
export const checkKeyVersion = KEY_RULES.checkVersion;

/** Key operations in Azure's spelling, each valid for the key type, no duplicates; default: all the type allows. */
export function checkKeyOps(kty: KeyType, ops: readonly string[] | null | undefined): KeyOp[] {
  if (ops == null) return [...OPS_FOR[kty]];
  const out: KeyOp[] = [];
  for (const raw of ops) {
    const op = KEY_OPS.find((k) => k.toLowerCase() === raw.toLowerCase());
    if (!op) throw bad(`Invalid key operation '${raw.slice(0, 40)}': use ${KEY_OPS.join(', ')}.`);
    if (!OPS_FOR[kty].includes(op)) throw bad(`The key operation '${op}' is not valid for an ${kty} key.`);
    if (!out.includes(op)) out.push(op);
  }
  return KEY_OPS.filter((k) => out.includes(k));
}

/** `kty` of a request: RSA or EC (HSM-protected and symmetric keys are not offered). */
export function checkKeyType(kty: string): KeyType {
  if (kty === 'RSA' || kty === 'EC') return kty;
  if (kty === 'RSA-HSM' || kty === 'EC-HSM' || kty === 'oct-HSM')
    throw bad(
      `The key type '${kty}' is not supported: this vault keeps software-protected keys; use RSA or EC.`,
    );
  throw bad(`The key type '${kty.slice(0, 20)}' is not supported: use RSA or EC.`);
}

export function checkCurve(crv: string): Curve {
  const c = CURVES.find((x) => x === crv);
  if (!c) throw bad(`The curve '${crv.slice(0, 20)}' is not supported: use ${CURVES.join(', ')}.`);
  return c;
}
