import type { AuditLog } from '../audit/log.js';
import { LatchkeyError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import type { Database, Queryable } from '../storage/port.js';
import { keyStore as store } from '../storage/vault/key-store.js';
import { certificateOwns } from './certificate-managed.js';
import type { KeyCache } from './key-cache.js';
import { type KeyCallContext, type KeyGuard, keyNotFound, KEY_OPERATIONS as OPS } from './key-guard.js';
import {
  generateMaterial,
  importMaterial,
  isRsaExponent,
  type KeyMaterial,
  type KeySpec,
  RSA_EXPONENT_RULE,
  specOf,
} from './key-material.js';
import {
  checkCurve,
  checkKeyName,
  checkKeyOps,
  checkKeyType,
  checkKeyVersion,
  KEY_RULES,
  type KeyRecord,
  RSA_SIZES,
} from './key-model.js';
import { expiryFor } from './key-rotation.js';
import type { KeySealing, KeyVaultRef } from './key-sealing.js';
import { createObjectLifecycle, createObjectVersions, newAttributes } from './objects.js';
import { checkTags, checkWindow } from './secret-rules.js';

export interface KeyAttributesInput {
  enabled?: boolean;
  /** Epoch ms; null clears (update). */
  nbf?: number | null;
  exp?: number | null;
  /** Exportable keys need a release policy (secure key release), which is not offered. */
  exportable?: boolean;
}
export interface CreateKeyInput extends KeyAttributesInput {
  kty: string;
  size?: number;
  exponent?: number;
  curve?: string;
  keyOps?: string[] | null;
  tags?: Record<string, string> | null;
  releasePolicy?: unknown;
}
export interface ImportKeyInput extends KeyAttributesInput {
  jwk: Record<string, unknown>;
  hsm?: boolean;
  tags?: Record<string, string> | null;
  releasePolicy?: unknown;
}
export interface UpdateKeyInput extends KeyAttributesInput {
  keyOps?: string[] | null;
  tags?: Record<string, string> | null;
  releasePolicy?: unknown;
}

const bad = (message: string) => new LatchkeyError('BadParameter', message);

/** Attribute rules shared by create, import and update. */
function checkAttributes(a: KeyAttributesInput & { releasePolicy?: unknown }) {
  if (a.exportable === true || (a.releasePolicy !== undefined && a.releasePolicy !== null))
    throw bad(
      'Exportable keys and key release policies (secure key release) are not supported by this vault.',
    );
}

function specFrom(input: CreateKeyInput): KeySpec {
  const kty = checkKeyType(input.kty);
  if (kty === 'RSA') {
    if (input.curve !== undefined) throw bad('crv applies to EC keys only.');
    const size = input.size ?? 2048;
    if (!(RSA_SIZES as readonly number[]).includes(size))
      throw bad(`key_size ${size} is not supported for RSA keys: use ${RSA_SIZES.join(', ')}.`);
    const exponent = input.exponent ?? 65537;
    if (!isRsaExponent(exponent)) throw bad(`public_exponent must be ${RSA_EXPONENT_RULE}.`);
    return { kty, size, exponent };
  }
  if (input.exponent !== undefined) throw bad('public_exponent applies to RSA keys only.');
  return { kty, curve: checkCurve(input.curve ?? 'P-256') };
}

/**
 * The Key Vault keys data plane (lifecycle): create and import, versions,
 * update, soft delete, recover, purge, rotate (backup and restore: key-backup.ts).
 * Private keys are sealed (key-sealing.ts) and never leave the vault except
 * inside a sealed backup.
 */
export function createKeys(deps: {
  db: Database;
  clock: Clock;
  sealing: KeySealing;
  audit: AuditLog;
  guard: KeyGuard;
  cache: KeyCache;
  /** A key changed outside the guard's writes (the purge job): drop its cached versions everywhere. */
  changed: (vaultId: string, nameLower: string) => void;
  /** The canonical URL of a vault by its lower-case name (audit targets of jobs). */
  baseUrlOf: (vaultNameLower: string) => string;
}) {
  const { db, clock, guard, cache } = deps;
  const { seal } = deps.sealing;

  const kind = {
    store,
    ...KEY_RULES,
    ops: OPS,
    onPurged: (vaultId: string, nameLower: string) => {
      cache.evict(vaultId, nameLower);
      deps.changed(vaultId, nameLower);
    },
    purgedWithOwner: certificateOwns,
  };
  /** list, listVersions, delete, listDeleted, getDeleted, recover, purge, purgeDue: shared with secrets and certificates. */
  const lifecycle = createObjectLifecycle({ ...deps, kind });
  const versions = createObjectVersions({ clock, guard, kind });

  /** Adds a version (new key or new current version); refused while the name is held by a deleted key. */
  const addVersion = (
    q: Queryable,
    vault: KeyVaultRef,
    name: string,
    m: KeyMaterial,
    a: Pick<KeyRecord, 'keyOps' | 'tags' | 'enabled' | 'nbf' | 'exp'>,
  ): Promise<KeyRecord> =>
    versions.add(q, vault.id, name, { kty: m.kty, jwk: m.jwk, ...a }, (nameLower, version) =>
      seal(vault, nameLower, version, m.privateJwk),
    );

  /**
   * Rotation: a new version like the current one (type, size or curve,
   * operations, tags), expiring per the policy. The key pair is generated
   * before the transaction (RSA 4096 takes a while); `commit` re-reads the key.
   */
  const prepareRotation = async (vault: KeyVaultRef, nameLower: string) => {
    const cur = await store.find(db, vault.id, nameLower);
    if (!cur || cur.deletedAt !== null) return undefined;
    return { material: await generateMaterial(specOf(cur.jwk)) };
  };
  const commitRotation = async (
    q: Queryable,
    vault: KeyVaultRef,
    nameLower: string,
    material: KeyMaterial,
  ) => {
    const cur = await store.find(q, vault.id, nameLower);
    if (!cur || cur.deletedAt !== null) return undefined;
    const policy = await store.getPolicy(q, vault.id, nameLower);
    const expiryTime = policy ? (JSON.parse(policy.json) as { expiryTime: string | null }).expiryTime : null;
    return addVersion(q, vault, cur.name, material, {
      keyOps: cur.keyOps,
      tags: cur.tags,
      enabled: true,
      nbf: null,
      exp: expiryFor({ expiryTime }, clock.now()),
    });
  };

  return {
    ...lifecycle,
    prepareRotation,
    commitRotation,

    /** `POST /keys/{name}/create`: a new key, or a new version of an existing one. */
    async create(ctx: KeyCallContext, rawName: string, input: CreateKeyInput): Promise<KeyRecord> {
      const name = checkKeyName(rawName);
      const spec = specFrom(input);
      const keyOps = checkKeyOps(spec.kty, input.keyOps);
      checkTags(input.tags);
      checkAttributes(input);
      checkWindow(input.nbf ?? null, input.exp ?? null);
      await guard.precheck(ctx, OPS.create, name);
      const material = await generateMaterial(spec);
      return guard.write(ctx, OPS.create, name, (tx) =>
        addVersion(tx, ctx.vault, name, material, {
          keyOps,
          ...newAttributes(input),
        }),
      );
    },

    /** `PUT /keys/{name}`: imports a JWK with its private parts as a new key or version. */
    async import(ctx: KeyCallContext, rawName: string, input: ImportKeyInput): Promise<KeyRecord> {
      const name = checkKeyName(rawName);
      checkTags(input.tags);
      checkAttributes(input);
      checkWindow(input.nbf ?? null, input.exp ?? null);
      if (input.hsm === true)
        throw bad('Importing into an HSM is not supported: this vault keeps software-protected keys.');
      return guard.write(ctx, OPS.import, name, async (tx) => {
        const material = await importMaterial(input.jwk);
        const ops = input.jwk.key_ops;
        if (
          ops !== undefined &&
          ops !== null &&
          (!Array.isArray(ops) || ops.some((o) => typeof o !== 'string'))
        )
          throw bad('key.key_ops must be an array of key operations.');
        return addVersion(tx, ctx.vault, name, material, {
          keyOps: checkKeyOps(material.kty, ops as string[] | undefined),
          ...newAttributes(input),
        });
      });
    },

    /** The public key and attributes of the latest (or a given) version. A disabled version is refused (403), as Azure does. */
    async get(ctx: KeyCallContext, rawName: string, rawVersion?: string): Promise<KeyRecord> {
      const name = checkKeyName(rawName);
      const version = rawVersion === undefined ? undefined : checkKeyVersion(rawVersion);
      return guard.read(ctx, OPS.get, name, async () => {
        const cur = await versions.active(db, ctx, name, version);
        if (!cur.enabled)
          throw new LatchkeyError('Forbidden', 'Operation get is not allowed on a disabled key.', {
            inner: 'KeyDisabled',
          });
        return cur;
      });
    },

    /** `PATCH /keys/{name}/{version}`: attributes, key operations and tags; never the key material. */
    async update(
      ctx: KeyCallContext,
      rawName: string,
      rawVersion: string | undefined,
      patch: UpdateKeyInput,
    ): Promise<KeyRecord> {
      const name = checkKeyName(rawName);
      const version = rawVersion === undefined ? undefined : checkKeyVersion(rawVersion);
      checkTags(patch.tags);
      checkAttributes(patch);
      return versions.update(ctx, name, version, patch, (cur) => ({
        keyOps: patch.keyOps == null ? cur.keyOps : checkKeyOps(cur.kty, patch.keyOps),
      }));
    },

    /** `POST /keys/{name}/rotate`: a new current version now. */
    async rotate(ctx: KeyCallContext, rawName: string): Promise<KeyRecord> {
      const name = checkKeyName(rawName);
      const nameLower = name.toLowerCase();
      await guard.precheck(ctx, OPS.rotate, name);
      const prepared = await prepareRotation(ctx.vault, nameLower);
      return guard.write(ctx, OPS.rotate, name, async (tx) => {
        const r = prepared && (await commitRotation(tx, ctx.vault, nameLower, prepared.material));
        if (!r) throw keyNotFound(name);
        return r;
      });
    },
  };
}
export type Keys = ReturnType<typeof createKeys>;
