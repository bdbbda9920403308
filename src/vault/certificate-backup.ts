import type { Sealer } from '../crypto/envelope.js';
import { LatchkeyError } from '../errors/index.js';
import type { Database } from '../storage/port.js';
import { type CertificateRecord, certificateStore as store } from '../storage/vault/certificate-store.js';
import { keyStore } from '../storage/vault/key-store.js';
import type { ObjectAttributes } from '../storage/vault/object-store.js';
import { secretStore } from '../storage/vault/secret-store.js';
import {
  BACKUP_INVALID,
  type BackupEnvelope,
  type BackupFormat,
  openBackupBlob,
  sealBackupBlob,
} from './backup.js';
import { type CertificateGuard, certificateNotFound, checkCertificateName } from './certificate-guard.js';
import { type CertificatePolicy, checkPolicy, PEM, PKCS12 } from './certificate-policy.js';
import { secretAad } from './certificate-versions.js';
import { thumbprint, validityOf } from './certificate-x509.js';
import type { PrivateJwk } from './key-material.js';
import { KEY_OPS, type KeyOp, type KeyType, type PublicJwk } from './key-model.js';
import { createKeySealing } from './key-sealing.js';
import type { ObjectCallContext } from './objects.js';

const C = 'Microsoft.KeyVault/vaults/certificates';

/** Azure's backup and restore of certificates: data actions and access-policy permissions. */
export const CERTIFICATE_BACKUP_OPERATIONS = {
  backup: { op: 'CertificateBackup', action: `${C}/backup/action`, perm: 'backup' },
  restore: { op: 'CertificateRestore', action: `${C}/restore/action`, perm: 'restore' },
} as const;

/** The key version of a certificate version, with its private key. */
interface BackupKeyPart extends ObjectAttributes {
  kty: KeyType;
  keyOps: KeyOp[];
  jwk: PublicJwk;
  privateJwk: PrivateJwk;
}
/** The secret version of a certificate version (its PFX or PEM); absent for a non-exportable key. */
interface BackupSecretPart extends ObjectAttributes {
  value: string;
  contentType: string | null;
}
interface CertificateBackupVersion extends ObjectAttributes {
  version: string;
  /** The X.509 certificate, DER, base64. */
  cer: string;
  key: BackupKeyPart;
  secret: BackupSecretPart | null;
}
/**
 * What a certificate backup holds: every version with its certificate, its key (private part
 * included) and its secret, and the certificate's policy. Only ever stored sealed.
 */
export interface CertificateBackup extends BackupEnvelope<CertificateBackupVersion> {
  policy: { policy: CertificatePolicy; created: number; updated: number };
}

const isAttrs = (x: Partial<ObjectAttributes> | null | undefined) =>
  !!x && typeof x.enabled === 'boolean' && typeof x.created === 'number' && typeof x.updated === 'number';

/** The certificate backup format (backup.ts): a certificate's private key leaves the vault this way too. */
const CERTIFICATE_BACKUP: BackupFormat<CertificateBackupVersion> = {
  magic: Buffer.from('LKCB1'),
  kind: 'certificate',
  tooLarge: 'The certificate has too many versions to fit in one backup.',
  invalid: BACKUP_INVALID,
  versionOk: (x) =>
    isAttrs(x) &&
    typeof x.cer === 'string' &&
    isAttrs(x.key) &&
    (x.key.kty === 'RSA' || x.key.kty === 'EC') &&
    x.key.jwk?.kty === x.key.kty &&
    x.key.privateJwk?.kty === x.key.kty &&
    Array.isArray(x.key.keyOps) &&
    x.key.keyOps.every((o) => KEY_OPS.includes(o)) &&
    (x.secret === null ||
      (isAttrs(x.secret) &&
        typeof x.secret.value === 'string' &&
        (x.secret.contentType === PKCS12 || x.secret.contentType === PEM))),
};

const attrsOf = (r: ObjectAttributes): ObjectAttributes => ({
  tags: r.tags,
  enabled: r.enabled,
  nbf: r.nbf,
  exp: r.exp,
  created: r.created,
  updated: r.updated,
});

const restoreConflict = (kind: string, name: string) =>
  new LatchkeyError(
    'Conflict',
    `${kind} ${name} already exists in this vault (or is deleted and recoverable); the certificate cannot be restored over it.`,
  );

/**
 * `POST /certificates/{name}/backup` and `POST /certificates/restore`, as Azure: one sealed blob
 * with every version of the certificate, its key (private part) and its secret, and the policy,
 * restorable into any vault of the same tenant of this installation (backup.ts) whose name is
 * free for the certificate, its key and its secret. Key or secret versions made apart from the
 * certificate (through `/keys` or `/secrets`) are not in it.
 */
export function createCertificateBackups(deps: {
  db: Database;
  sealer: Sealer;
  guard: CertificateGuard;
  onKeyAndSecretChanged?: (vaultId: string, nameLower: string) => void;
}) {
  const { db, sealer, guard } = deps;
  const keySealing = createKeySealing(sealer);
  const OPS = CERTIFICATE_BACKUP_OPERATIONS;
  return {
    /** A sealed blob of the certificate (all versions, key and secret included); restorable only in this tenant. */
    async backup(ctx: ObjectCallContext, rawName: string): Promise<Buffer> {
      // duplicate-ok: a backup's first steps (name, guard, all versions) as key-backup.ts; what it reads next differs.
      const name = checkCertificateName(rawName);
      return guard.read(ctx, OPS.backup, name, async () => {
        const nameLower = name.toLowerCase();
        const rows = await store.allVersions(db, ctx.vault.id, nameLower);
        const first = rows[0];
        const p = await store.getPolicy(db, ctx.vault.id, nameLower);
        if (!first || first.deletedAt !== null || !p) throw certificateNotFound(name);
        const keys = new Map(
          (await keyStore.allVersions(db, ctx.vault.id, nameLower)).map((k) => [k.version, k]),
        );
        const secrets = new Map(
          (await secretStore.allVersions(db, ctx.vault.id, nameLower)).map((s) => [s.version, s]),
        );
        const versions: CertificateBackupVersion[] = [];
        for (const r of rows) {
          const c = r;
          const k = keys.get(r.version);
          // A version without its key cannot be restored as a certificate: left out.
          if (!k?.sealed) continue;
          const kr = k;
          const s = secrets.get(r.version);
          versions.push({
            version: c.version,
            cer: c.cer.toString('base64'),
            ...attrsOf(c),
            key: {
              kty: kr.kty,
              keyOps: kr.keyOps,
              jwk: kr.jwk,
              privateJwk: keySealing.unseal(ctx.vault, nameLower, r.version, k.sealed),
              ...attrsOf(kr),
            },
            secret: s?.sealed
              ? {
                  value: sealer.open(s.sealed, secretAad(ctx.vault, nameLower, r.version)).toString('utf8'),
                  contentType: s.contentType,
                  ...attrsOf(s),
                }
              : null,
          });
        }
        const backup: CertificateBackup = {
          v: 1,
          tenantId: ctx.vault.tenantId,
          name: first.name,
          current: first.currentVersion,
          policy: { policy: JSON.parse(p.json) as CertificatePolicy, created: p.created, updated: p.updated },
          versions,
        };
        return sealBackupBlob(sealer, CERTIFICATE_BACKUP, backup);
      });
    },

    /**
     * Restores a backup into this vault: the certificate, its key and its secret with the same
     * version ids, and the policy. The name must be free for all three (else 409 `Conflict`).
     */
    async restore(
      ctx: ObjectCallContext,
      blob: Buffer,
    ): Promise<
      CertificateRecord & { policy: CertificatePolicy; policyCreated: number; policyUpdated: number }
    > {
      const restored = await guard.write(ctx, OPS.restore, null, async (tx) => {
        const b = openCertificateBackup(sealer, ctx.vault.tenantId, blob);
        let policy: CertificatePolicy;
        try {
          policy = checkPolicy(b.policy.policy, undefined, { restoring: true });
        } catch (e) {
          throw new LatchkeyError('BadParameter', BACKUP_INVALID, { cause: e });
        }
        const vaultId = ctx.vault.id;
        const nameLower = b.name.toLowerCase();
        if (await store.exists(tx, vaultId, nameLower)) throw restoreConflict('Certificate', b.name);
        if (await keyStore.exists(tx, vaultId, nameLower)) throw restoreConflict('A key named', b.name);
        if (await secretStore.exists(tx, vaultId, nameLower)) throw restoreConflict('A secret named', b.name);
        const created = Math.min(...b.versions.map((v) => v.created));
        // Only into free names, also against a create that commits meanwhile (PostgreSQL).
        if (!(await store.insertNew(tx, vaultId, b.name, b.current, created)))
          throw restoreConflict('Certificate', b.name);
        if (!(await keyStore.insertNew(tx, vaultId, b.name, b.current, created)))
          throw restoreConflict('A key named', b.name);
        const secretVersions = b.versions.filter((v) => v.secret !== null);
        if (secretVersions.length > 0) {
          const cur = secretVersions.some((v) => v.version === b.current)
            ? b.current
            : secretVersions[secretVersions.length - 1]!.version;
          if (!(await secretStore.insertNew(tx, vaultId, b.name, cur, created)))
            throw restoreConflict('A secret named', b.name);
        }
        let current: CertificateRecord | undefined;
        for (const v of b.versions) {
          const cer = Buffer.from(v.cer, 'base64');
          // The validity and thumbprint are the certificate's own: read again, not taken from the blob.
          let validity: { nbf: number; exp: number };
          try {
            validity = validityOf(cer);
          } catch (e) {
            throw new LatchkeyError('BadParameter', BACKUP_INVALID, { cause: e });
          }
          const record = {
            version: v.version,
            ...attrsOf(v),
            ...validity,
            cer,
            x5t: thumbprint(cer),
          };
          await store.insertVersion(tx, vaultId, nameLower, record);
          const { privateJwk, ...key } = v.key;
          await keyStore.insertVersion(tx, vaultId, nameLower, {
            ...key,
            version: v.version,
            sealed: keySealing.seal(ctx.vault, nameLower, v.version, privateJwk),
          });
          if (v.secret) {
            const { value, ...secret } = v.secret;
            await secretStore.insertVersion(tx, vaultId, nameLower, {
              ...secret,
              version: v.version,
              sealed: sealer.seal(value, secretAad(ctx.vault, nameLower, v.version)),
            });
          }
          if (v.version === b.current)
            current = { ...record, name: b.name, deletedAt: null, scheduledPurgeAt: null };
        }
        await store.putPolicy(tx, vaultId, nameLower, JSON.stringify(policy), b.policy.updated);
        return {
          ...current!,
          policy,
          policyCreated: b.policy.updated,
          policyUpdated: b.policy.updated,
        };
      });
      deps.onKeyAndSecretChanged?.(ctx.vault.id, restored.name.toLowerCase());
      return restored;
    },
  };
}
export type CertificateBackups = ReturnType<typeof createCertificateBackups>;

/** Opens a certificate backup sealed for `tenantId` (any other tenant's, or a changed blob: 400 `BadParameter`). */
export const openCertificateBackup = (sealer: Sealer, tenantId: string, blob: Buffer): CertificateBackup =>
  openBackupBlob<CertificateBackup, CertificateBackupVersion>(sealer, CERTIFICATE_BACKUP, tenantId, blob);
