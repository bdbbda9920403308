import { documentStore, type ObjectRecord, type ObjectRow, objectStore } from './object-store.js';

export type { StoredDocument } from './object-store.js';

/** A certificate version joined with its certificate's state (deleted or not). */
interface CertificateRow extends ObjectRow {
  cer: Buffer | Uint8Array;
  x5t: string;
}

/** One certificate version as the domain hands it out (times in epoch ms). Holds no private material. */
export interface CertificateRecord extends ObjectRecord {
  /** The X.509 certificate, DER. */
  cer: Buffer;
  /** Base64url SHA-1 thumbprint of `cer`. */
  x5t: string;
}

export type NewCertificateVersion = Omit<CertificateRecord, 'name' | 'deletedAt' | 'scheduledPurgeAt'>;

const policies = documentStore('certificate_policies', 'policy');
const operations = documentStore('certificate_operations', 'operation', { replaceCreated: true });

/**
 * The SQL behind certificates (migration 0013): the shared object SQL (object-store.ts:
 * soft delete, versions, paging, purge with the policy and the pending operation), the
 * policy and the pending operation. The DER certificate is public and read with every
 * version, so it is one of the kind's own columns and nothing is sealed; nbf and exp are
 * the certificate's own and an update never writes them.
 */
export const certificateStore = {
  // duplicate-ok: each kind declares its tables and own columns to the one objectStore generator;
  // the declarations are alike in shape because the SQL behind them is shared.
  ...objectStore<CertificateRow, CertificateRecord, NewCertificateVersion>({
    objects: 'certificates',
    versions: 'certificate_versions',
    columns: [
      { name: 'cer', value: (r) => r.cer },
      { name: 'x5t', value: (r) => r.x5t },
    ],
    fromRow: (r) => ({ cer: Buffer.from(r.cer), x5t: r.x5t }),
    sealed: null,
    fixedWindow: true,
    dependents: ['certificate_policies', 'certificate_operations'],
  }),
  getPolicy: policies.get,
  putPolicy: policies.put,
  getOperation: operations.get,
  putOperation: operations.put,
  /** Removes the pending operation; returns whether there was one. */
  deleteOperation: operations.delete,
};
export type CertificateStore = typeof certificateStore;
