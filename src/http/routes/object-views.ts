import { seconds } from '../../lib/clock.js';
import type { ObjectRecord } from '../../vault/model.js';
import { recoveryLevel, type Vault } from '../../vault/model.js';

/** Azure's attributes of a secret or key version (epoch seconds; nbf/exp only when set). */
export interface ObjectAttributesView {
  enabled: boolean;
  nbf?: number;
  exp?: number;
  created: number;
  updated: number;
  recoveryLevel: string;
  recoverableDays: number;
}

/** Azure's attributes of a secret or key version: epoch seconds; nbf/exp only when set. Field by field, in this order. */
export function objectAttributes(r: ObjectRecord, vault: Vault): ObjectAttributesView {
  const a = { enabled: r.enabled } as ObjectAttributesView;
  if (r.nbf !== null) a.nbf = seconds(r.nbf);
  if (r.exp !== null) a.exp = seconds(r.exp);
  a.created = seconds(r.created);
  a.updated = seconds(r.updated);
  a.recoveryLevel = recoveryLevel(vault);
  a.recoverableDays = vault.softDeleteRetentionInDays;
  return a;
}

/** Azure's `managed: true` on a certificate's key or secret (bundles and items); absent on any other. */
export const managedField = (r: ObjectRecord) => (r.managed === true ? { managed: true } : {});

/** The fields a deleted object's bundle or item adds: `recoveryId` (`{base}/deletedsecrets/{name}`), dates. */
export const deletedFields = (base: string, deletedPath: string, r: ObjectRecord) => ({
  recoveryId: `${base}/${deletedPath}/${r.name}`,
  ...(r.deletedAt !== null ? { deletedDate: seconds(r.deletedAt) } : {}),
  ...(r.scheduledPurgeAt !== null ? { scheduledPurgeDate: seconds(r.scheduledPurgeAt) } : {}),
});

/** A kind's view of a deleted object: the recovery fields (`deletedPath`: `deletedsecrets`, …), then `view` of it. */
export const deletedView =
  <R extends ObjectRecord, T extends object>(
    deletedPath: string,
    view: (base: string, vault: Vault, r: R) => T,
  ) =>
  (base: string, vault: Vault, r: R) => ({ ...deletedFields(base, deletedPath, r), ...view(base, vault, r) });

/** The start of a kind's item: its id (`versioned`: with the version, for list-versions), attributes and tags. */
export const itemFields = (
  base: string,
  collection: 'secrets' | 'certificates',
  vault: Vault,
  r: ObjectRecord,
  versioned: boolean,
) => ({
  id: versioned ? `${base}/${collection}/${r.name}/${r.version}` : `${base}/${collection}/${r.name}`,
  attributes: objectAttributes(r, vault),
  ...(r.tags !== null ? { tags: r.tags } : {}),
});
