import { LatchkeyError } from '../errors/index.js';
import type { Queryable } from '../storage/port.js';
import { certificateStore } from '../storage/vault/certificate-store.js';

/**
 * A certificate's key and secret (same name) are managed by Key Vault, as in Azure: they change
 * only with the certificate (create, import, merge, update, delete, recover, purge), never through
 * the keys or secrets API. The object guard (object-guard.ts) asks here, inside the write's
 * transaction, before any write on a named key or secret.
 */
/** True when `nameLower` is a certificate's (deleted or not): its key and secret go with it (objects.ts). */
export const certificateOwns = (q: Queryable, vaultId: string, nameLower: string): Promise<boolean> =>
  certificateStore.exists(q, vaultId, nameLower);

export async function refuseManaged(
  q: Queryable,
  collection: 'secrets' | 'keys',
  vaultId: string,
  name: string,
  operation: string,
): Promise<void> {
  if (!(await certificateStore.exists(q, vaultId, name.toLowerCase()))) return;
  const kind = collection === 'secrets' ? 'secret' : 'key';
  throw new LatchkeyError(
    'Forbidden',
    `Operation ${operation} is not allowed on a ${kind} managed by a certificate: ${name.slice(0, 127)} is the ${kind} of the certificate of the same name; change it through the certificates API.`,
  );
}

/**
 * `GET /secrets/{name}` found no secret: when the name is a (not deleted) certificate's, its key
 * is not exportable (`key_props.exportable: false`, no secret is written) and the read is refused
 * (403) rather than answered 404, so a client learns why the private key is not served.
 */
export async function refuseNonExportable(q: Queryable, vaultId: string, name: string): Promise<void> {
  const row = await certificateStore.find(q, vaultId, name.toLowerCase());
  if (!row || row.deletedAt !== null) return;
  throw new LatchkeyError(
    'Forbidden',
    `The certificate ${name.slice(0, 127)} has a non-exportable key (key_props.exportable: false): its private key is never served as a secret.`,
  );
}
