import type { Sealer } from '../crypto/envelope.js';
import { LatchkeyError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import type { Database } from '../storage/port.js';
import { type KeyCallContext, type KeyGuard, keyNotFound, KEY_OPERATIONS as OPS } from './key-guard.js';
import type { PrivateJwk } from './key-material.js';
import {
  checkKeyName,
  KEY_OPS,
  type KeyOp,
  type KeyRecord,
  type KeyType,
  type PublicJwk,
} from './key-model.js';
import type { LifetimeAction } from './key-rotation.js';
import type { KeySealing } from './key-sealing.js';
import { keyFromRow, keyStore as store } from './key-store.js';
import { isObjectName, VERSION_RE } from './model.js';

/** What a key backup holds: every version with its private key, and the rotation policy. Only ever stored sealed. */
export interface KeyBackup {
  v: 1;
  tenantId: string;
  name: string;
  current: string;
  policy: {
    lifetimeActions: LifetimeAction[];
    expiryTime: string | null;
    created: number;
    updated: number;
  } | null;
  versions: {
    version: string;
    kty: KeyType;
    keyOps: KeyOp[];
    jwk: PublicJwk;
    privateJwk: PrivateJwk;
    tags: Record<string, string> | null;
    enabled: boolean;
    nbf: number | null;
    exp: number | null;
    created: number;
    updated: number;
  }[];
}

const MAGIC = Buffer.from('LKKB1');
export const KEY_BACKUP_MAX_BYTES = 3 * 1024 * 1024;
const aad = (tenantId: string) => `backup|key|${tenantId}`;

/**
 * Seals a key backup with the installation's data key (AES-256-GCM), bound by
 * its AAD to the tenant: private key material leaves the vault only this way,
 * and the blob opens only in the same installation and tenant.
 */
export function sealKeyBackup(sealer: Sealer, backup: KeyBackup): Buffer {
  const json = JSON.stringify(backup);
  if (json.length > KEY_BACKUP_MAX_BYTES)
    throw new LatchkeyError('BadParameter', 'The key has too many versions to fit in one backup.');
  return Buffer.concat([MAGIC, sealer.seal(json, aad(backup.tenantId))]);
}

const invalid = (cause?: unknown) =>
  new LatchkeyError(
    'BadParameter',
    'The backup blob is invalid: it is corrupt, not a key backup, or it was made by another installation or tenant.',
    cause === undefined ? {} : { cause },
  );

export function openKeyBackup(sealer: Sealer, tenantId: string, blob: Buffer): KeyBackup {
  if (blob.length <= MAGIC.length || !blob.subarray(0, MAGIC.length).equals(MAGIC)) throw invalid();
  let b: KeyBackup;
  try {
    b = JSON.parse(sealer.open(blob.subarray(MAGIC.length), aad(tenantId)).toString('utf8')) as KeyBackup;
  } catch (e) {
    throw invalid(e);
  }
  const ok =
    b.v === 1 &&
    b.tenantId === tenantId &&
    typeof b.name === 'string' &&
    isObjectName(b.name) &&
    Array.isArray(b.versions) &&
    b.versions.length > 0 &&
    b.versions.every(
      (x) =>
        VERSION_RE.test(x.version) &&
        (x.kty === 'RSA' || x.kty === 'EC') &&
        x.jwk?.kty === x.kty &&
        x.privateJwk?.kty === x.kty &&
        Array.isArray(x.keyOps) &&
        x.keyOps.every((o) => KEY_OPS.includes(o)),
    ) &&
    b.versions.some((x) => x.version === b.current);
  if (!ok) throw invalid();
  return b;
}

/**
 * `POST /keys/{name}/backup` and `POST /keys/restore`: every version with its
 * private key, and the rotation policy, in one sealed blob.
 */
export function createKeyBackups(deps: {
  db: Database;
  clock: Clock;
  sealer: Sealer;
  sealing: KeySealing;
  guard: KeyGuard;
}) {
  const { db, clock, sealer, guard } = deps;
  const { seal, unseal } = deps.sealing;
  return {
    /** A sealed blob with every version (private keys included) and the rotation policy; restorable only here. */
    async backup(ctx: KeyCallContext, rawName: string): Promise<Buffer> {
      const name = checkKeyName(rawName);
      return guard.read(ctx, OPS.backup, name, async () => {
        const nameLower = name.toLowerCase();
        const rows = await store.allVersions(db, ctx.vault.id, nameLower);
        const first = rows[0];
        if (!first || first.deleted_at !== null) throw keyNotFound(name);
        const policy = await store.getPolicy(db, ctx.vault.id, nameLower);
        const backup: KeyBackup = {
          v: 1,
          tenantId: ctx.vault.tenantId,
          name: first.name,
          current: first.current_version,
          policy: policy
            ? {
                ...JSON.parse(policy.policy),
                created: Number(policy.created_at),
                updated: Number(policy.updated_at),
              }
            : null,
          versions: rows.map((r) => {
            const { name: _n, deletedAt: _d, scheduledPurgeAt: _s, ...rest } = keyFromRow(r);
            return { ...rest, privateJwk: unseal(ctx.vault, nameLower, r.version, r.private_sealed!) };
          }),
        };
        return sealKeyBackup(sealer, backup);
      });
    },

    /** Restores a backup (all versions, same version ids, the policy); the name must be free in this vault. */
    async restore(ctx: KeyCallContext, blob: Buffer): Promise<KeyRecord> {
      return guard.write(ctx, OPS.restore, null, async (tx) => {
        const b = openKeyBackup(sealer, ctx.vault.tenantId, blob);
        const nameLower = b.name.toLowerCase();
        if (await store.exists(tx, ctx.vault.id, nameLower))
          throw new LatchkeyError(
            'Conflict',
            `Key ${b.name} already exists in this vault (or is deleted and recoverable); it cannot be restored over.`,
          );
        await store.upsertKey(tx, ctx.vault.id, b.name, b.current, clock.now());
        for (const v of b.versions) {
          const { privateJwk, ...rest } = v;
          await store.insertVersion(tx, ctx.vault.id, nameLower, {
            ...rest,
            sealed: seal(ctx.vault, nameLower, v.version, privateJwk),
          });
        }
        if (b.policy) {
          const { created, updated, ...policy } = b.policy;
          await store.putPolicy(tx, ctx.vault.id, nameLower, JSON.stringify(policy), updated, created);
        }
        const { privateJwk: _p, ...cur } = b.versions.find((v) => v.version === b.current)!;
        return { ...cur, name: b.name, deletedAt: null, scheduledPurgeAt: null };
      });
    },
  };
}
export type KeyBackups = ReturnType<typeof createKeyBackups>;
