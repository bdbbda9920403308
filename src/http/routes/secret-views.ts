import { seconds } from '../../lib/clock.js';
import { recoveryLevel, type Vault } from '../../vault/model.js';
import type { SecretRecord } from '../../vault/secrets.js';

/** Azure's SecretAttributes: epoch seconds; nbf/exp only when set. */
function attributes(r: SecretRecord, vault: Vault) {
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

const deletedFields = (base: string, r: SecretRecord) => ({
  recoveryId: `${base}/deletedsecrets/${r.name}`,
  ...(r.deletedAt !== null ? { deletedDate: seconds(r.deletedAt) } : {}),
  ...(r.scheduledPurgeAt !== null ? { scheduledPurgeDate: seconds(r.scheduledPurgeAt) } : {}),
});

/** SecretBundle (`value` only for get and set). */
export function secretBundle(base: string, vault: Vault, r: SecretRecord, withValue = false) {
  return {
    ...(withValue && r.value !== undefined ? { value: r.value } : {}),
    ...(r.contentType !== null ? { contentType: r.contentType } : {}),
    id: `${base}/secrets/${r.name}/${r.version}`,
    attributes: attributes(r, vault),
    ...(r.tags !== null ? { tags: r.tags } : {}),
  };
}

/** DeletedSecretBundle: the latest version's bundle plus recovery fields. */
export function deletedSecretBundle(base: string, vault: Vault, r: SecretRecord) {
  return { ...deletedFields(base, r), ...secretBundle(base, vault, r) };
}

/** SecretItem: no value; `versioned` for list-versions (id with the version). */
export function secretItem(base: string, vault: Vault, r: SecretRecord, versioned = false) {
  return {
    id: versioned ? `${base}/secrets/${r.name}/${r.version}` : `${base}/secrets/${r.name}`,
    attributes: attributes(r, vault),
    ...(r.tags !== null ? { tags: r.tags } : {}),
    ...(r.contentType !== null ? { contentType: r.contentType } : {}),
  };
}

export function deletedSecretItem(base: string, vault: Vault, r: SecretRecord) {
  return { ...deletedFields(base, r), ...secretItem(base, vault, r) };
}
