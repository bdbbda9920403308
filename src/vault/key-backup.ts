import type { Sealer } from '../crypto/envelope.js';
import { LatchkeyError } from '../errors/index.js';
import type { PrivateJwk } from './key-material.js';
import { KEY_OPS, type KeyOp, type KeyType, type PublicJwk } from './key-model.js';
import type { LifetimeAction } from './key-rotation.js';
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
