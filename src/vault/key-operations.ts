import { randomBytes } from 'node:crypto';
import { LatchkeyError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import type { Database } from '../storage/port.js';
import { keyStore } from '../storage/vault/key-store.js';
import type { KeyCache } from './key-cache.js';
import { type LoadedKey, loadKey, rsaDecrypt, rsaEncrypt, signDigest, verifyDigest } from './key-crypto.js';
import { KEY_OPERATIONS, type KeyCallContext, type KeyGuard, keyNotFound } from './key-guard.js';
import {
  checkKeyName,
  checkKeyVersion,
  ENCRYPTION_ALGS,
  type EncryptionAlg,
  type KeyOp,
  type KeyRecord,
  SIGNATURE_ALGS,
  type SignatureAlg,
} from './key-model.js';
import type { KeyRecordCache } from './key-record-cache.js';
import type { KeySealing } from './key-sealing.js';

export interface CryptoResult {
  /** The full key id's parts: the version that did the work. */
  name: string;
  version: string;
  value: Buffer;
}

/** Operations Azure still allows outside a key's nbf/exp window (to test a key early, or recover old data). */
const OUTSIDE_WINDOW_OK: readonly KeyOp[] = ['decrypt', 'unwrapKey', 'verify'];
const OPERATION = {
  encrypt: KEY_OPERATIONS.encrypt,
  decrypt: KEY_OPERATIONS.decrypt,
  wrapKey: KEY_OPERATIONS.wrapKey,
  unwrapKey: KEY_OPERATIONS.unwrapKey,
  sign: KEY_OPERATIONS.sign,
  verify: KEY_OPERATIONS.verify,
} as const;

const bad = (message: string) => new LatchkeyError('BadParameter', message);
const forbidden = (message: string, inner: string) => new LatchkeyError('Forbidden', message, { inner });

function checkEncryptionAlg(rec: KeyRecord, alg: string): EncryptionAlg {
  const a = ENCRYPTION_ALGS.find((x) => x === alg);
  if (!a)
    throw bad(`The algorithm '${alg.slice(0, 30)}' is not supported: use ${ENCRYPTION_ALGS.join(', ')}.`);
  if (rec.kty !== 'RSA') throw bad(`The algorithm ${a} is not valid for an ${rec.kty} key.`);
  return a;
}

function checkSignatureAlg(rec: KeyRecord, alg: string, digest: Buffer, field: string): SignatureAlg {
  if (!Object.hasOwn(SIGNATURE_ALGS, alg))
    throw bad(
      `The algorithm '${alg.slice(0, 30)}' is not supported: use ${Object.keys(SIGNATURE_ALGS).join(', ')}.`,
    );
  const a = alg as SignatureAlg;
  const spec = SIGNATURE_ALGS[a];
  if (spec.kty !== rec.kty) throw bad(`The algorithm ${a} is not valid for an ${rec.kty} key.`);
  if (rec.jwk.kty === 'EC' && spec.curve !== rec.jwk.crv)
    throw bad(`The algorithm ${a} requires a ${spec.curve} key; this key's curve is ${rec.jwk.crv}.`);
  if (digest.length !== spec.bytes)
    throw bad(
      `Invalid length of '${field}': ${digest.length} bytes. ${a} requires ${spec.bytes} bytes, encoded with base64url.`,
    );
  return a;
}

/**
 * Key Vault crypto operations (`POST /keys/{name}/{version}/{op}`) and `/rng`.
 * Each is authorized and audited like a read; then the key must exist, be
 * enabled, allow the operation in its `key_ops`, and, for encrypt, wrapKey and
 * sign, be inside its nbf/exp window (Azure lets decrypt, unwrapKey and verify
 * work outside it).
 */
export function createKeyOperations(deps: {
  db: Database;
  clock: Clock;
  guard: KeyGuard;
  cache: KeyCache;
  records: Pick<KeyRecordCache, 'get' | 'mark' | 'put'>;
  sealing: Pick<KeySealing, 'unseal'>;
}) {
  const { db, clock, guard, cache, records } = deps;

  /** The version (undefined: the latest), deleted or not: from the cache, else SQL (then cached). */
  const find = async (vaultId: string, nameLower: string, version: string | undefined) => {
    const hit = records.get(vaultId, nameLower, version);
    if (hit) return hit;
    const mark = records.mark();
    const found = await keyStore.find(db, vaultId, nameLower, version);
    if (found) records.put(vaultId, nameLower, version, found, mark);
    return found;
  };

  /**
   * The parsed private key of a version: from the cache, else read (the sealed
   * column only now: a cache hit reads no private material from SQL), unsealed
   * and parsed once.
   */
  const loaded = async (ctx: KeyCallContext, name: string, nameLower: string, rec: KeyRecord) => {
    const hit = cache.get(ctx.vault.id, nameLower, rec.version);
    if (hit) return hit;
    const found = await keyStore.findSealed(db, ctx.vault.id, nameLower, rec.version);
    if (!found?.sealed) throw keyNotFound(name, rec.version); // purged meanwhile
    const key = await loadKey(deps.sealing.unseal(ctx.vault, nameLower, rec.version, found.sealed), rec.jwk);
    cache.set(ctx.vault.id, nameLower, rec.version, key);
    return key;
  };

  /** Authorizes, finds the version, applies the state checks, runs `fn` with the parsed key. */
  const run = <T>(
    ctx: KeyCallContext,
    op: KeyOp,
    rawName: string,
    rawVersion: string | undefined,
    fn: (rec: KeyRecord, key: LoadedKey) => T,
  ): Promise<T> => {
    const name = checkKeyName(rawName);
    const version = rawVersion ? checkKeyVersion(rawVersion) : undefined;
    return guard.read(
      ctx,
      OPERATION[op],
      name,
      async () => {
        const nameLower = name.toLowerCase();
        // Authorized first (inside `read`); only then is the cache consulted.
        const rec = await find(ctx.vault.id, nameLower, version);
        if (!rec || rec.deletedAt !== null) throw keyNotFound(name, version);
        if (!rec.enabled) throw forbidden(`Operation ${op} is not allowed on a disabled key.`, 'KeyDisabled');
        if (!rec.keyOps.includes(op))
          throw forbidden(`Operation ${op} is not permitted on this key.`, 'KeyOperationForbidden');
        const now = clock.now();
        if (!OUTSIDE_WINDOW_OK.includes(op)) {
          if (rec.nbf !== null && now < rec.nbf)
            throw forbidden(
              `Operation ${op} is not allowed on a key that is not yet valid (nbf).`,
              'KeyNotYetValid',
            );
          if (rec.exp !== null && now >= rec.exp)
            throw forbidden(`Operation ${op} is not allowed on an expired key.`, 'KeyExpired');
        }
        return fn(rec, await loaded(ctx, name, nameLower, rec));
      },
      version,
    );
  };
  const result = (rec: KeyRecord, value: Buffer): CryptoResult => ({
    name: rec.name,
    version: rec.version,
    value,
  });

  /** encrypt and wrapKey (RSA encryption), decrypt and unwrapKey (RSA decryption) of `value`. */
  const cipher =
    (op: 'encrypt' | 'decrypt' | 'wrapKey' | 'unwrapKey', fn: typeof rsaEncrypt) =>
    (ctx: KeyCallContext, name: string, version: string | undefined, alg: string, value: Buffer) =>
      run(ctx, op, name, version, (rec, key) => result(rec, fn(key, checkEncryptionAlg(rec, alg), value)));

  return {
    encrypt: cipher('encrypt', rsaEncrypt),
    decrypt: cipher('decrypt', rsaDecrypt),
    wrapKey: cipher('wrapKey', rsaEncrypt),
    unwrapKey: cipher('unwrapKey', rsaDecrypt),
    /** Signs a digest (`value` is the hash of the message, of the algorithm's length). */
    sign(ctx: KeyCallContext, name: string, version: string | undefined, alg: string, digest: Buffer) {
      return run(ctx, 'sign', name, version, (rec, key) =>
        result(rec, signDigest(key, checkSignatureAlg(rec, alg, digest, 'value'), digest)),
      );
    },
    verify(
      ctx: KeyCallContext,
      name: string,
      version: string | undefined,
      alg: string,
      digest: Buffer,
      signature: Buffer,
    ) {
      return run(ctx, 'verify', name, version, (rec, key) => ({
        name: rec.name,
        version: rec.version,
        valid: verifyDigest(key, checkSignatureAlg(rec, alg, digest, 'digest'), digest, signature),
      }));
    },
    /** `POST /rng`: 1–128 random bytes from the server's CSPRNG. */
    random(ctx: KeyCallContext, count: number): Promise<Buffer> {
      if (!Number.isInteger(count) || count < 1 || count > 128)
        throw bad('count must be an integer from 1 to 128.');
      return guard.read(ctx, KEY_OPERATIONS.rng, null, async () => randomBytes(count));
    },
  };
}
export type KeyOperations = ReturnType<typeof createKeyOperations>;
