import type { Vault } from '../../vault/model.js';
import type { SecretRecord } from '../../vault/secrets.js';
import { objectAttributes as attributes, deletedView, itemFields, managedField } from './object-views.js';

/**
 * SecretBundle (`value` only for get and set). A certificate's secret is `managed` and names
 * the certificate's key of the same version (`kid`), as Azure's.
 */
export function secretBundle(base: string, vault: Vault, r: SecretRecord, withValue = false) {
  return {
    ...(withValue && r.value !== undefined ? { value: r.value } : {}),
    ...(r.contentType !== null ? { contentType: r.contentType } : {}),
    id: `${base}/secrets/${r.name}/${r.version}`,
    attributes: attributes(r, vault),
    ...(r.tags !== null ? { tags: r.tags } : {}),
    ...(r.managed === true ? { kid: `${base}/keys/${r.name}/${r.version}`, managed: true } : {}),
  };
}

/** DeletedSecretBundle: the latest version's bundle plus recovery fields. */
export const deletedSecretBundle = deletedView('deletedsecrets', secretBundle);

/** SecretItem: no value; `versioned` for list-versions (id with the version). */
export function secretItem(base: string, vault: Vault, r: SecretRecord, versioned = false) {
  return {
    ...itemFields(base, 'secrets', vault, r, versioned),
    ...(r.contentType !== null ? { contentType: r.contentType } : {}),
    ...managedField(r),
  };
}

export const deletedSecretItem = deletedView('deletedsecrets', secretItem);
