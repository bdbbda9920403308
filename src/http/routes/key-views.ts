import { seconds } from '../../lib/clock.js';
import type { KeyRecord } from '../../vault/key-model.js';
import type { RotationPolicy } from '../../vault/key-rotation.js';
import type { Vault } from '../../vault/model.js';
import { deletedView, managedField, objectAttributes } from './object-views.js';

/** Azure's KeyAttributes: a secret's, and `exportable` (always false here). */
const attributes = (r: KeyRecord, vault: Vault) => ({ ...objectAttributes(r, vault), exportable: false });

export const keyId = (base: string, r: Pick<KeyRecord, 'name' | 'version'>) =>
  `${base}/keys/${r.name}/${r.version}`;

/** KeyBundle: the public JWK (never private parts), attributes and tags. */
export function keyBundle(base: string, vault: Vault, r: KeyRecord) {
  const jwk = r.jwk.kty === 'RSA' ? { n: r.jwk.n, e: r.jwk.e } : { crv: r.jwk.crv, x: r.jwk.x, y: r.jwk.y };
  return {
    key: { kid: keyId(base, r), kty: r.kty, key_ops: r.keyOps, ...jwk },
    attributes: attributes(r, vault),
    ...(r.tags !== null ? { tags: r.tags } : {}),
    ...managedField(r),
  };
}

export const deletedKeyBundle = deletedView('deletedkeys', keyBundle);

/** KeyItem: `versioned` for list-versions (kid with the version). */
export function keyItem(base: string, vault: Vault, r: KeyRecord, versioned = false) {
  return {
    kid: versioned ? keyId(base, r) : `${base}/keys/${r.name}`,
    attributes: attributes(r, vault),
    ...(r.tags !== null ? { tags: r.tags } : {}),
    ...managedField(r),
  };
}

export const deletedKeyItem = deletedView('deletedkeys', keyItem);

/** KeyRotationPolicy, with Azure's id `…/keys/{name}/rotationpolicy`. */
export function rotationPolicyView(base: string, name: string, p: RotationPolicy) {
  return {
    id: `${base}/keys/${name}/rotationpolicy`,
    lifetimeActions: p.lifetimeActions,
    attributes: {
      ...(p.expiryTime !== null ? { expiryTime: p.expiryTime } : {}),
      ...(p.created !== null ? { created: seconds(p.created) } : {}),
      ...(p.updated !== null ? { updated: seconds(p.updated) } : {}),
    },
  };
}
