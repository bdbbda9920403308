import type { Sealer } from '../crypto/envelope.js';
import type { Clock } from '../lib/clock.js';
import type { Database } from '../storage/port.js';
import { keyStore as store } from '../storage/vault/key-store.js';
import type { ObjectAttributes } from '../storage/vault/object-store.js';
import {
  BACKUP_INVALID,
  type BackupEnvelope,
  type BackupFormat,
  openBackupBlob,
  sealBackupBlob,
} from './backup.js';
import { refuseManaged } from './certificate-managed.js';
import { type KeyCallContext, type KeyGuard, keyNotFound, KEY_OPERATIONS as OPS } from './key-guard.js';
import type { PrivateJwk } from './key-material.js';
import {
  checkKeyName,
  KEY_OPS,
  KEY_RULES,
  type KeyOp,
  type KeyRecord,
  type KeyType,
  type PublicJwk,
} from './key-model.js';
import type { LifetimeAction } from './key-rotation.js';
import type { KeySealing } from './key-sealing.js';

interface KeyBackupVersion extends ObjectAttributes {
  version: string;
  kty: KeyType;
  keyOps: KeyOp[];
  jwk: PublicJwk;
  privateJwk: PrivateJwk;
}
/** What a key backup holds: every version with its private key, and the rotation policy. Only ever stored sealed. */
export interface KeyBackup extends BackupEnvelope<KeyBackupVersion> {
  policy: {
    lifetimeActions: LifetimeAction[];
    expiryTime: string | null;
    created: number;
    updated: number;
  } | null;
}

/** The key backup format (backup.ts): private key material leaves the vault only this way. */
const KEY_BACKUP: BackupFormat<KeyBackupVersion> = {
  magic: Buffer.from('LKKB1'),
  kind: 'key',
  tooLarge: 'The key has too many versions to fit in one backup.',
  invalid: BACKUP_INVALID,
  versionOk: (x) =>
    (x.kty === 'RSA' || x.kty === 'EC') &&
    x.jwk?.kty === x.kty &&
    x.privateJwk?.kty === x.kty &&
    Array.isArray(x.keyOps) &&
    x.keyOps.every((o) => KEY_OPS.includes(o)),
};

export const sealKeyBackup = (sealer: Sealer, backup: KeyBackup): Buffer =>
  sealBackupBlob(sealer, KEY_BACKUP, backup);

export const openKeyBackup = (sealer: Sealer, tenantId: string, blob: Buffer): KeyBackup =>
  openBackupBlob<KeyBackup, KeyBackupVersion>(sealer, KEY_BACKUP, tenantId, blob);

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
  /** A restore changed a key outside a named write: drop its cached versions everywhere. */
  changed: (vaultId: string, nameLower: string) => void;
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
        if (!first || first.deletedAt !== null) throw keyNotFound(name);
        const policy = await store.getPolicy(db, ctx.vault.id, nameLower);
        const backup: KeyBackup = {
          v: 1,
          tenantId: ctx.vault.tenantId,
          name: first.name,
          current: first.currentVersion,
          policy: policy
            ? { ...JSON.parse(policy.json), created: policy.created, updated: policy.updated }
            : null,
          versions: rows.map((r) => {
            // `managed` is the name's state in this vault, not the version's: not carried in the blob.
            const {
              name: _n,
              deletedAt: _d,
              scheduledPurgeAt: _s,
              currentVersion: _c,
              managed: _m,
              sealed,
              ...rest
            } = r;
            return { ...rest, privateJwk: unseal(ctx.vault, nameLower, r.version, sealed) };
          }),
        };
        return sealKeyBackup(sealer, backup);
      });
    },

    /** Restores a backup (all versions, same version ids, the policy); the name must be free in this vault. */
    async restore(ctx: KeyCallContext, blob: Buffer): Promise<KeyRecord> {
      // Only into a free name (nothing of it is cached); dropped anyway, for other nodes too.
      const restored = await guard.write(ctx, OPS.restore, null, async (tx) => {
        const b = openKeyBackup(sealer, ctx.vault.tenantId, blob);
        const nameLower = b.name.toLowerCase();
        if (await store.exists(tx, ctx.vault.id, nameLower)) throw KEY_RULES.restoreConflict(b.name);
        // A certificate's key is written only with it, never restored into its name.
        await refuseManaged(tx, 'keys', ctx.vault.id, b.name, 'restore');
        if (!(await store.insertNew(tx, ctx.vault.id, b.name, b.current, clock.now())))
          throw KEY_RULES.restoreConflict(b.name); // created meanwhile
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
      deps.changed(ctx.vault.id, restored.name.toLowerCase());
      return restored;
    },
  };
}
export type KeyBackups = ReturnType<typeof createKeyBackups>;
