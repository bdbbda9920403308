import type { Queryable } from '../port.js';
import { deleteByName } from './by-name.js';

/** A certificate waiting for its merge (issuer `Unknown`), as the domain writes and reads it. */
export interface CertificateRequestRecord {
  name: string;
  requestId: string;
  /** The policy (JSON, the wire shape). */
  policy: string;
  /** The PKCS#10 request, DER. */
  csr: Buffer;
  /** The private key made for it, sealed (vault/certificate-merge.ts). */
  sealedKey: Buffer;
  /** The pending operation (JSON). */
  operation: string;
  enabled: boolean;
  tags: Record<string, string> | null;
  created: number;
  updated: number;
}

interface RequestRow {
  name: string;
  request_id: string;
  policy: string;
  csr: Buffer | Uint8Array;
  sealed_key: Buffer | Uint8Array;
  operation: string;
  enabled: number | boolean;
  tags: string | null;
  created_at: number | string;
  updated_at: number | string;
}

const fromRow = (r: RequestRow): CertificateRequestRecord => ({
  name: r.name,
  requestId: r.request_id,
  policy: r.policy,
  csr: Buffer.from(r.csr),
  sealedKey: Buffer.from(r.sealed_key),
  operation: r.operation,
  enabled: Number(r.enabled) === 1,
  tags: r.tags === null ? null : (JSON.parse(r.tags) as Record<string, string>),
  created: Number(r.created_at),
  updated: Number(r.updated_at),
});

/** The SQL of pending certificate requests (migration 0016): one per certificate name. */
export const certificateRequestStore = {
  // duplicate-ok: a store operation of the house pattern (signature, one statement, row mapping); the SQL differs
  async find(
    q: Queryable,
    vaultId: string,
    nameLower: string,
  ): Promise<CertificateRequestRecord | undefined> {
    const r = await q.get<RequestRow>(
      `SELECT name, request_id, policy, csr, sealed_key, operation, enabled, tags, created_at, updated_at
       FROM certificate_requests WHERE vault_id = $1 AND name_lower = $2`,
      [vaultId, nameLower],
    );
    return r && fromRow(r);
  },
  /** Stores a new request; false when one is already pending for the name. */
  async insert(q: Queryable, vaultId: string, r: CertificateRequestRecord): Promise<boolean> {
    const res = await q.run(
      `INSERT INTO certificate_requests (vault_id, name_lower, name, request_id, policy, csr, sealed_key, operation, enabled, tags, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (vault_id, name_lower) DO NOTHING`,
      [
        vaultId,
        r.name.toLowerCase(),
        r.name,
        r.requestId,
        r.policy,
        r.csr,
        r.sealedKey,
        r.operation,
        r.enabled ? 1 : 0,
        r.tags ? JSON.stringify(r.tags) : null,
        r.created,
        r.updated,
      ],
    );
    return res.changes > 0;
  },
  async setOperation(q: Queryable, vaultId: string, nameLower: string, operation: string, now: number) {
    await q.run(
      'UPDATE certificate_requests SET operation = $3, updated_at = $4 WHERE vault_id = $1 AND name_lower = $2',
      [vaultId, nameLower, operation, now],
    );
  },
  /** Removes the request; returns whether there was one. */
  delete: (q: Queryable, vaultId: string, nameLower: string): Promise<boolean> =>
    deleteByName(q, 'certificate_requests', vaultId, nameLower),
};
