import type { Vault } from '../../vault/model.js';
import type { SecretRecord } from '../../vault/secrets.js';
import { objectAttributes as attributes, deletedView, itemFields } from './object-views.js';

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
export const deletedSecretBundle = deletedView('deletedsecrets', secretBundle);

/** SecretItem: no value; `versioned` for list-versions (id with the version). */
export function secretItem(base: string, vault: Vault, r: SecretRecord, versioned = false) {
  return {
    ...itemFields(base, 'secrets', vault, r, versioned),
    ...(r.contentType !== null ? { contentType: r.contentType } : {}),
  };
}

export const deletedSecretItem = deletedView('deletedsecrets', secretItem);
