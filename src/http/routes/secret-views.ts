import type { Vault } from '../../vault/model.js';
import type { SecretRecord } from '../../vault/secrets.js';
import {
  objectAttributes as attributes,
  deletedView,
  itemFields,
  managedField,
  type ObjectAttributesView,
} from './object-views.js';

/** A SecretBundle as answered (the optional fields only when set). */
export interface SecretBundleView {
  value?: string;
  contentType?: string;
  id: string;
  attributes: ObjectAttributesView;
  tags?: Record<string, string>;
  kid?: string;
  managed?: true;
}

/**
 * SecretBundle (`value` only for get and set). A certificate's secret is `managed` and names
 * the certificate's key of the same version (`kid`), as Azure's.
 */
export function secretBundle(
  base: string,
  vault: Vault,
  r: SecretRecord,
  withValue = false,
): SecretBundleView {
  // Built field by field in Azure's order (no spread of a temporary object per optional field):
  // value, contentType, id, attributes, tags, kid, managed.
  const b = {} as SecretBundleView;
  if (withValue && r.value !== undefined) b.value = r.value;
  if (r.contentType !== null) b.contentType = r.contentType;
  b.id = `${base}/secrets/${r.name}/${r.version}`;
  b.attributes = attributes(r, vault);
  if (r.tags !== null) b.tags = r.tags;
  if (r.managed === true) {
    b.kid = `${base}/keys/${r.name}/${r.version}`;
    b.managed = true;
  }
  return b;
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
