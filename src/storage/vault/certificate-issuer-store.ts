import type { Queryable } from '../port.js';
import { deleteByName } from './by-name.js';

/** A vault's certificate issuer (migration 0016). `doc` is the non-secret JSON the domain keeps. */
export interface CertificateIssuerRecord {
  name: string;
  provider: string;
  doc: string;
  enabled: boolean;
  created: number;
  updated: number;
}

interface IssuerRow {
  name: string;
  provider: string;
  doc: string;
  enabled: number | boolean;
  created_at: number | string;
  updated_at: number | string;
}

const fromRow = (r: IssuerRow): CertificateIssuerRecord => ({
  name: r.name,
  provider: r.provider,
  doc: r.doc,
  enabled: Number(r.enabled) === 1,
  created: Number(r.created_at),
  updated: Number(r.updated_at),
});
const COLS = 'name, provider, doc, enabled, created_at, updated_at';

/** The SQL of certificate issuers: one row per vault and issuer name. */
export const certificateIssuerStore = {
  async find(q: Queryable, vaultId: string, nameLower: string): Promise<CertificateIssuerRecord | undefined> {
    const r = await q.get<IssuerRow>(
      `SELECT ${COLS} FROM certificate_issuers WHERE vault_id = $1 AND name_lower = $2`,
      [vaultId, nameLower],
    );
    return r && fromRow(r);
  },
  /** The vault's issuers by name (at most `limit`). */
  async list(q: Queryable, vaultId: string, limit: number): Promise<CertificateIssuerRecord[]> {
    const rows = await q.all<IssuerRow>(
      `SELECT ${COLS} FROM certificate_issuers WHERE vault_id = $1 ORDER BY name_lower LIMIT $2`,
      [vaultId, limit],
    );
    return rows.map(fromRow);
  },
  async count(q: Queryable, vaultId: string): Promise<number> {
    const r = await q.get<{ n: number | string }>(
      'SELECT COUNT(*) AS n FROM certificate_issuers WHERE vault_id = $1',
      [vaultId],
    );
    return Number(r?.n ?? 0);
  },
  async put(q: Queryable, vaultId: string, r: CertificateIssuerRecord): Promise<void> {
    await q.run(
      `INSERT INTO certificate_issuers (vault_id, name_lower, name, provider, doc, enabled, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (vault_id, name_lower) DO UPDATE SET provider = excluded.provider, doc = excluded.doc,
         enabled = excluded.enabled, updated_at = excluded.updated_at`,
      [vaultId, r.name.toLowerCase(), r.name, r.provider, r.doc, r.enabled ? 1 : 0, r.created, r.updated],
    );
  },
  delete: (q: Queryable, vaultId: string, nameLower: string): Promise<boolean> =>
    deleteByName(q, 'certificate_issuers', vaultId, nameLower),
};
