import { seconds } from '../../lib/clock.js';
import type { ObjectRecord } from '../../vault/model.js';
import { recoveryLevel, type Vault } from '../../vault/model.js';

/** Azure's attributes of a secret or key version: epoch seconds; nbf/exp only when set. */
export function objectAttributes(r: ObjectRecord, vault: Vault) {
  return {
    enabled: r.enabled,
    ...(r.nbf !== null ? { nbf: seconds(r.nbf) } : {}),
    ...(r.exp !== null ? { exp: seconds(r.exp) } : {}),
    created: seconds(r.created),
    updated: seconds(r.updated),
    recoveryLevel: recoveryLevel(vault),
    recoverableDays: vault.softDeleteRetentionInDays,
  };
}

/** The fields a deleted object's bundle or item adds: `recoveryId` (`{base}/deletedsecrets/{name}`), dates. */
export const deletedFields = (base: string, deletedPath: string, r: ObjectRecord) => ({
  recoveryId: `${base}/${deletedPath}/${r.name}`,
  ...(r.deletedAt !== null ? { deletedDate: seconds(r.deletedAt) } : {}),
  ...(r.scheduledPurgeAt !== null ? { scheduledPurgeDate: seconds(r.scheduledPurgeAt) } : {}),
});
