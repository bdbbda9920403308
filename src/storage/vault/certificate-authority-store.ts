import type { Queryable } from '../port.js';

/** A tenant's own CA (issuer provider `Latchkey`): its certificate (public) and sealed private key. */
export interface CertificateAuthorityRecord {
  tenantId: string;
  cer: Buffer;
  sealedKey: Buffer;
  created: number;
}

interface AuthorityRow {
  tenant_id: string;
  cer: Buffer | Uint8Array;
  sealed_key: Buffer | Uint8Array;
  created_at: number | string;
}

/** The SQL of the tenants' CAs (migration 0016). */
export const certificateAuthorityStore = {
  async find(q: Queryable, tenantId: string): Promise<CertificateAuthorityRecord | undefined> {
    const r = await q.get<AuthorityRow>(
      'SELECT tenant_id, cer, sealed_key, created_at FROM certificate_authorities WHERE tenant_id = $1',
      [tenantId],
    );
    return (
      r && {
        tenantId: r.tenant_id,
        cer: Buffer.from(r.cer),
        sealedKey: Buffer.from(r.sealed_key),
        created: Number(r.created_at),
      }
    );
  },
  /** Stores the tenant's CA unless one is already there (another node made it first). */
  async insertIfAbsent(q: Queryable, r: CertificateAuthorityRecord): Promise<void> {
    await q.run(
      `INSERT INTO certificate_authorities (tenant_id, cer, sealed_key, created_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (tenant_id) DO NOTHING`,
      [r.tenantId, r.cer, r.sealedKey, r.created],
    );
  },
};
