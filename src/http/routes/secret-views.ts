import type { Vault } from '../../vault/model.js';
import type { SecretRecord } from '../../vault/secrets.js';
import { objectAttributes as attributes, deletedFields } from './object-views.js';

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
  return { ...deletedFields(base, 'deletedsecrets', r), ...secretBundle(base, vault, r) };
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
  return { ...deletedFields(base, 'deletedsecrets', r), ...secretItem(base, vault, r) };
}
