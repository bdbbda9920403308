import type { Sealer } from '../crypto/envelope.js';
import { LatchkeyError } from '../errors/index.js';
import type { ObjectAttributes } from '../storage/vault/object-store.js';
import { isObjectName, VERSION_RE } from './model.js';

/**
 * Backup blobs, shared by secrets, keys and certificates: the object's versions as JSON,
 * sealed with the installation's data key (AES-256-GCM) behind a magic
 * prefix, bound by the AAD `backup|{kind}|{tenant}` to the tenant, so a blob
 * opens only in the same installation and tenant and any change to it fails
 * its integrity check. The secret format is below; the key format in key-backup.ts, the
 * certificate format in certificate-backup.ts.
 */
export interface BackupEnvelope<V extends { version: string }> {
  v: 1;
  tenantId: string;
  name: string;
  current: string;
  versions: V[];
}

/** One kind of backup: its magic prefix, AAD kind, the messages naming it, and its check of a version. */
export interface BackupFormat<V extends { version: string }> {
  magic: Buffer;
  kind: 'secret' | 'key' | 'certificate';
  tooLarge: string;
  invalid: string;
  versionOk: (x: V) => boolean;
}

/**
 * Key Vault's answer (400 BadParameter) to any blob that does not open: corrupt, of the other kind,
 * or from another installation or tenant (the SDKs' tests compare this exact text).
 */
export const BACKUP_INVALID = 'Backup blob contains invalid or corrupt version.';

/**
 * A backup's size limit before sealing, in UTF-8 bytes (an object with very many large versions
 * cannot be backed up). Sealed, with its magic, and in base64 it stays under BACKUP_RESTORE_MAX_CHARS:
 * every backup that is given out can be restored.
 */
export const BACKUP_MAX_BYTES = 3 * 1024 * 1024;
/** The restore routes' limit on a backup blob's base64 text (secrets, certificates). */
export const BACKUP_RESTORE_MAX_CHARS = 6 * 1024 * 1024;

export function sealBackupBlob<V extends { version: string }>(
  sealer: Sealer,
  format: BackupFormat<V>,
  backup: BackupEnvelope<V>,
): Buffer {
  const json = JSON.stringify(backup);
  // Bytes, not UTF-16 units: a value of non-ASCII text takes up to 3 bytes a unit (until session
  // 18 a backup under the limit in units could be twice the restore limit in base64).
  if (Buffer.byteLength(json) > BACKUP_MAX_BYTES) throw new LatchkeyError('BadParameter', format.tooLarge);
  return Buffer.concat([format.magic, sealer.seal(json, `backup|${format.kind}|${backup.tenantId}`)]);
}

export function openBackupBlob<B extends BackupEnvelope<V>, V extends { version: string }>(
  sealer: Sealer,
  format: BackupFormat<V>,
  tenantId: string,
  blob: Buffer,
): B {
  const { magic } = format;
  const invalid = (cause?: unknown) => new LatchkeyError('BadParameter', format.invalid, { cause });
  if (blob.length <= magic.length || !blob.subarray(0, magic.length).equals(magic)) throw invalid();
  let b: B;
  try {
    b = JSON.parse(
      sealer.open(blob.subarray(magic.length), `backup|${format.kind}|${tenantId}`).toString('utf8'),
    ) as B;
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
    b.versions.every((x) => VERSION_RE.test(x.version) && format.versionOk(x)) &&
    b.versions.some((x) => x.version === b.current);
  if (!ok) throw invalid();
  return b;
}

interface SecretBackupVersion extends ObjectAttributes {
  version: string;
  value: string;
  contentType: string | null;
}
/** What a secret backup holds: every version, values included. Only ever stored sealed. */
export type SecretBackup = BackupEnvelope<SecretBackupVersion>;

const SECRET_BACKUP: BackupFormat<SecretBackupVersion> = {
  magic: Buffer.from('LKSB1'),
  kind: 'secret',
  tooLarge: 'The secret has too many or too large versions to fit in one backup.',
  invalid: BACKUP_INVALID,
  versionOk: (x) => typeof x.value === 'string',
};

export const sealBackup = (sealer: Sealer, backup: SecretBackup): Buffer =>
  sealBackupBlob(sealer, SECRET_BACKUP, backup);

export const openBackup = (sealer: Sealer, tenantId: string, blob: Buffer): SecretBackup =>
  openBackupBlob<SecretBackup, SecretBackupVersion>(sealer, SECRET_BACKUP, tenantId, blob);
