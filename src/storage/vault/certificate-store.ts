import type { Queryable } from '../port.js';
import { deleteByName } from './by-name.js';
import { attributesFromRow, type ObjectRecord, type ObjectRow, objectStore } from './object-store.js';

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

/** A stored policy or pending operation: the JSON the domain wrote, and its times. */
export interface StoredDocument {
  json: string;
  created: number;
  updated: number;
}

const certificateFromRow = (r: CertificateRow): CertificateRecord => ({
  name: r.name,
  version: r.version,
  cer: Buffer.from(r.cer),
  x5t: r.x5t,
  ...attributesFromRow(r),
});

interface DocRow {
  doc: string;
  created_at: number;
  updated_at: number;
}
const doc = (r: DocRow | undefined): StoredDocument | undefined =>
  r && { json: r.doc, created: Number(r.created_at), updated: Number(r.updated_at) };

// The DER certificate is read with every version (it is public), so it is one of the kind's own
// columns; `insertVersion`/`updateVersion` below replace the shared ones (nothing here is sealed).
const objects = objectStore<CertificateRow, CertificateRecord>({
  objects: 'certificates',
  versions: 'certificate_versions',
  columns: [
    { name: 'x5t', value: (r) => r.x5t },
    { name: 'cer', value: (r) => r.cer },
  ],
  sealed: 'cer',
  dependents: ['certificate_policies', 'certificate_operations'],
});

/**
 * The SQL behind certificates (migration 0013): the shared object SQL (object-store.ts:
 * soft delete, versions, paging, purge with the policy and the pending operation), the
 * writes of a version's own columns, the policy and the pending operation.
 */
export const certificateStore = {
  ...objects,
  fromRow: certificateFromRow,
  async insertVersion(
    q: Queryable,
    vaultId: string,
    nameLower: string,
    v: NewCertificateVersion,
  ): Promise<void> {
    await q.run(
      `INSERT INTO certificate_versions (vault_id, name_lower, version, cer, x5t, tags, enabled, nbf, exp, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
      [
        vaultId,
        nameLower,
        v.version,
        v.cer,
        v.x5t,
        v.tags ? JSON.stringify(v.tags) : null,
        v.enabled ? 1 : 0,
        v.nbf,
        v.exp,
        v.created,
        v.updated,
      ],
    );
  },
  /** Tags and `enabled` of one version (nbf/exp are the certificate's own and never change). */
  async updateVersion(q: Queryable, vaultId: string, nameLower: string, r: CertificateRecord): Promise<void> {
    await q.run(
      `UPDATE certificate_versions SET tags = $4, enabled = $5, updated_at = $6
       WHERE vault_id = $1 AND name_lower = $2 AND version = $3`,
      [vaultId, nameLower, r.version, r.tags ? JSON.stringify(r.tags) : null, r.enabled ? 1 : 0, r.updated],
    );
  },
  async getPolicy(q: Queryable, vaultId: string, nameLower: string): Promise<StoredDocument | undefined> {
    return doc(
      await q.get<DocRow>(
        'SELECT policy AS doc, created_at, updated_at FROM certificate_policies WHERE vault_id = $1 AND name_lower = $2',
        [vaultId, nameLower],
      ),
    );
  },
  async putPolicy(
    q: Queryable,
    vaultId: string,
    nameLower: string,
    json: string,
    now: number,
  ): Promise<void> {
    await q.run(
      `INSERT INTO certificate_policies (vault_id, name_lower, policy, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
       ON CONFLICT (vault_id, name_lower) DO UPDATE SET policy = excluded.policy, updated_at = excluded.updated_at`,
      [vaultId, nameLower, json, now],
    );
  },
  async getOperation(q: Queryable, vaultId: string, nameLower: string): Promise<StoredDocument | undefined> {
    return doc(
      await q.get<DocRow>(
        'SELECT operation AS doc, created_at, updated_at FROM certificate_operations WHERE vault_id = $1 AND name_lower = $2',
        [vaultId, nameLower],
      ),
    );
  },
  async putOperation(
    q: Queryable,
    vaultId: string,
    nameLower: string,
    json: string,
    now: number,
  ): Promise<void> {
    await q.run(
      `INSERT INTO certificate_operations (vault_id, name_lower, operation, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
       ON CONFLICT (vault_id, name_lower) DO UPDATE SET operation = excluded.operation, created_at = excluded.created_at, updated_at = excluded.updated_at`,
      [vaultId, nameLower, json, now],
    );
  },
  /** Removes the pending operation; returns whether there was one. */
  deleteOperation: (q: Queryable, vaultId: string, nameLower: string): Promise<boolean> =>
    deleteByName(q, 'certificate_operations', vaultId, nameLower),
};
export type CertificateStore = typeof certificateStore;
