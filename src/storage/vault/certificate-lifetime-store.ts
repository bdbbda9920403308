import type { Queryable } from '../port.js';

/** A certificate's current version with what its lifetime actions need. */
export interface LifetimeCandidate {
  vaultId: string;
  nameLower: string;
  name: string;
  version: string;
  nbf: number | null;
  exp: number;
  /** When the version was made (epoch ms). */
  created: number;
  /** The policy (JSON). */
  policy: string;
  tenantId: string;
  /** The vault's lower-case name (audit). */
  vault: string;
}

interface CandidateRow {
  vault_id: string;
  name_lower: string;
  name: string;
  current_version: string;
  nbf: number | string | null;
  exp: number | string;
  created_at: number | string;
  policy: string;
  tenant_id: string;
  vault: string;
}

/** The SQL of the certificates' lifetime actions (migration 0016). */
export const certificateLifetimeStore = {
  // duplicate-ok: the keyset query over a kind's live current versions (with when each was made), as the key rotation job's; the tables and joins differ per kind
  /** Live certificates with an expiry (their current version), a page after `after` by primary key. */
  async candidates(
    q: Queryable,
    after: { vaultId: string; nameLower: string },
    limit: number,
  ): Promise<LifetimeCandidate[]> {
    const rows = await q.all<CandidateRow>(
      `SELECT c.vault_id, c.name_lower, c.name, c.current_version, v.nbf, v.exp, v.created_at, p.policy,
              vt.tenant_id, vt.name_lower AS vault
       FROM certificates c
       JOIN certificate_versions v ON v.vault_id = c.vault_id AND v.name_lower = c.name_lower AND v.version = c.current_version
       JOIN certificate_policies p ON p.vault_id = c.vault_id AND p.name_lower = c.name_lower
       JOIN vaults vt ON vt.id = c.vault_id AND vt.deleted_at IS NULL
       WHERE c.deleted_at IS NULL AND v.exp IS NOT NULL
         AND (c.vault_id > $1 OR (c.vault_id = $1 AND c.name_lower > $2))
       ORDER BY c.vault_id, c.name_lower LIMIT $3`,
      [after.vaultId, after.nameLower, limit],
    );
    // duplicate-ok: the keyset page over a kind's live objects joined with their vault, as the key rotation job's; the tables, columns and record differ per kind
    return rows.map((r) => ({
      vaultId: r.vault_id,
      nameLower: r.name_lower,
      name: r.name,
      version: r.current_version,
      nbf: r.nbf === null ? null : Number(r.nbf),
      exp: Number(r.exp),
      created: Number(r.created_at),
      policy: r.policy,
      tenantId: r.tenant_id,
      vault: r.vault,
    }));
  },
  /** Records an action as done for a version; false when it already was (by this or another node). */
  async markDone(
    q: Queryable,
    vaultId: string,
    nameLower: string,
    version: string,
    action: string,
    now: number,
  ): Promise<boolean> {
    const r = await q.run(
      `INSERT INTO certificate_lifetime_events (vault_id, name_lower, version, action, done_at) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (vault_id, name_lower, version, action) DO NOTHING`,
      [vaultId, nameLower, version, action, now],
    );
    return r.changes > 0;
  },
  /** The certificate's current version now (another node or a user may have renewed it). */
  async currentVersion(q: Queryable, vaultId: string, nameLower: string): Promise<string | undefined> {
    const r = await q.get<{ current_version: string; deleted_at: number | null }>(
      'SELECT current_version, deleted_at FROM certificates WHERE vault_id = $1 AND name_lower = $2',
      [vaultId, nameLower],
    );
    return r && r.deleted_at === null ? r.current_version : undefined;
  },
};
