import type { Sealer } from '../crypto/envelope.js';
import { LatchkeyError } from '../errors/index.js';
import { isObjectName, VERSION_RE } from './model.js';

/** What a secret backup holds: every version, values included. Only ever stored sealed. */
export interface SecretBackup {
  v: 1;
  tenantId: string;
  name: string;
  current: string;
  versions: {
    version: string;
    value: string;
    contentType: string | null;
    tags: Record<string, string> | null;
    enabled: boolean;
    nbf: number | null;
    exp: number | null;
    created: number;
    updated: number;
  }[];
}

const MAGIC = Buffer.from('LKSB1');
/** A backup's sealed size limit (a secret with very many large versions cannot be backed up). */
export const BACKUP_MAX_BYTES = 3 * 1024 * 1024;

const aad = (tenantId: string) => `backup|secret|${tenantId}`;

/**
 * Seals a backup with the installation's data key (AES-256-GCM), bound by its
 * AAD to the tenant: it opens only in the same installation and tenant, and
 * any change to the blob fails its integrity check.
 */
export function sealBackup(sealer: Sealer, backup: SecretBackup): Buffer {
  const json = JSON.stringify(backup);
  if (json.length > BACKUP_MAX_BYTES)
    throw new LatchkeyError(
      'BadParameter',
      'The secret has too many or too large versions to fit in one backup.',
    );
  return Buffer.concat([MAGIC, sealer.seal(json, aad(backup.tenantId))]);
}

const invalid = (cause?: unknown) =>
  new LatchkeyError(
    'BadParameter',
    'The backup blob is invalid: it is corrupt, or it was made by another installation or tenant.',
    { cause },
  );

export function openBackup(sealer: Sealer, tenantId: string, blob: Buffer): SecretBackup {
  if (blob.length <= MAGIC.length || !blob.subarray(0, MAGIC.length).equals(MAGIC)) throw invalid();
  let parsed: SecretBackup;
  try {
    parsed = JSON.parse(
      sealer.open(blob.subarray(MAGIC.length), aad(tenantId)).toString('utf8'),
    ) as SecretBackup;
  } catch (e) {
    throw invalid(e);
  }
  const ok =
    parsed.v === 1 &&
    parsed.tenantId === tenantId &&
    typeof parsed.name === 'string' &&
    isObjectName(parsed.name) &&
    Array.isArray(parsed.versions) &&
    parsed.versions.length > 0 &&
    parsed.versions.every((x) => VERSION_RE.test(x.version) && typeof x.value === 'string') &&
    parsed.versions.some((x) => x.version === parsed.current);
  if (!ok) throw invalid();
  return parsed;
}
