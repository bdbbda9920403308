import type { Queryable } from '../port.js';

/** A provisioning key as stored (migration 0006): only the HMAC of its value is kept. */
export interface StoredProvisioningKey {
  id: string;
  tenantId: string;
  displayName: string;
  scopes: string[];
  keyHash: Buffer;
  expiresAt: number;
  maxUses: number | null;
  uses: number;
  /** null when the key may be used from any address. */
  allowedCidrs: string[] | null;
  resourceGroup: string | null;
  state: 'active' | 'rotated' | 'revoked';
  graceUntil: number | null;
  successorId: string | null;
  predecessorId: string | null;
  createdAt: number;
  createdBy: string | null;
  revokedAt: number | null;
  lastUsedAt: number | null;
}

/** A new key: what the store sets itself (no uses, active, not rotated, revoked or used) left out. */
export type NewProvisioningKey = Omit<
  StoredProvisioningKey,
  'uses' | 'state' | 'graceUntil' | 'successorId' | 'revokedAt' | 'lastUsedAt'
>;

interface Row {
  id: string;
  tenant_id: string;
  display_name: string;
  scopes: string;
  key_hash: Buffer;
  expires_at: number;
  max_uses: number | null;
  uses: number;
  allowed_cidrs: string | null;
  resource_group: string | null;
  state: 'active' | 'rotated' | 'revoked';
  grace_until: number | null;
  successor_id: string | null;
  predecessor_id: string | null;
  created_at: number;
  created_by: string | null;
  revoked_at: number | null;
  last_used_at: number | null;
}

const num = (v: number | null): number | null => (v === null ? null : Number(v));
const fromRow = (r: Row): StoredProvisioningKey => ({
  id: r.id,
  tenantId: r.tenant_id,
  displayName: r.display_name,
  scopes: JSON.parse(r.scopes) as string[],
  keyHash: Buffer.from(r.key_hash),
  expiresAt: Number(r.expires_at),
  maxUses: num(r.max_uses),
  uses: Number(r.uses),
  allowedCidrs: r.allowed_cidrs ? (JSON.parse(r.allowed_cidrs) as string[]) : null,
  resourceGroup: r.resource_group,
  state: r.state,
  graceUntil: num(r.grace_until),
  successorId: r.successor_id,
  predecessorId: r.predecessor_id,
  createdAt: Number(r.created_at),
  createdBy: r.created_by,
  revokedAt: num(r.revoked_at),
  lastUsedAt: num(r.last_used_at),
});

/** The SQL behind provisioning keys (src/provisioning/keys.ts). */
export const provisioningKeyStore = {
  async insert(q: Queryable, k: NewProvisioningKey): Promise<void> {
    await q.run(
      `INSERT INTO provisioning_keys (id, tenant_id, display_name, scopes, key_hash, expires_at, max_uses, uses, allowed_cidrs,
         resource_group, state, predecessor_id, created_at, created_by)
       VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $9, 'active', $10, $11, $12)`,
      [
        k.id,
        k.tenantId,
        k.displayName,
        JSON.stringify(k.scopes),
        k.keyHash,
        k.expiresAt,
        k.maxUses,
        k.allowedCidrs?.length ? JSON.stringify(k.allowedCidrs) : null,
        k.resourceGroup,
        k.predecessorId,
        k.createdAt,
        k.createdBy,
      ],
    );
  },
  async find(q: Queryable, id: string, tenantId?: string): Promise<StoredProvisioningKey | undefined> {
    const r =
      tenantId === undefined
        ? await q.get<Row>('SELECT * FROM provisioning_keys WHERE id = $1', [id])
        : await q.get<Row>('SELECT * FROM provisioning_keys WHERE id = $1 AND tenant_id = $2', [
            id,
            tenantId,
          ]);
    return r ? fromRow(r) : undefined;
  },
  async listByTenant(q: Queryable, tenantId: string): Promise<StoredProvisioningKey[]> {
    const rows = await q.all<Row>(
      'SELECT * FROM provisioning_keys WHERE tenant_id = $1 ORDER BY created_at DESC, id',
      [tenantId],
    );
    return rows.map(fromRow);
  },
  /**
   * Takes the key's row lock in `q`'s transaction (an UPDATE that changes nothing): a rotate and a
   * revoke of one key then run one after the other on PostgreSQL, the second reading what the
   * first committed. False when there is no such key.
   */
  async hold(q: Queryable, tenantId: string, id: string): Promise<boolean> {
    const r = await q.run('UPDATE provisioning_keys SET state = state WHERE id = $1 AND tenant_id = $2', [
      id,
      tenantId,
    ]);
    return r.changes > 0;
  },
  /** Marks an active key rotated; false (nothing changed) if it is no longer active. */
  async markRotated(q: Queryable, id: string, graceUntil: number, successorId: string): Promise<boolean> {
    const r = await q.run(
      "UPDATE provisioning_keys SET state = 'rotated', grace_until = $1, successor_id = $2 WHERE id = $3 AND state = 'active'",
      [graceUntil, successorId, id],
    );
    return r.changes > 0;
  },
  async markRevoked(q: Queryable, id: string, at: number): Promise<void> {
    await q.run("UPDATE provisioning_keys SET state = 'revoked', revoked_at = $1 WHERE id = $2", [at, id]);
  },
  /** Counts one use unless the key is out of uses (atomically); false when it is. */
  async countUse(q: Queryable, id: string, at: number): Promise<boolean> {
    const used = await q.run(
      'UPDATE provisioning_keys SET uses = uses + 1, last_used_at = $1 WHERE id = $2 AND (max_uses IS NULL OR uses < max_uses)',
      [at, id],
    );
    return used.changes > 0;
  },
  /** Keys expired (or past their grace) by `now` whose expiry has not been audited yet. */
  async listUnauditedExpired(q: Queryable, now: number): Promise<StoredProvisioningKey[]> {
    const rows = await q.all<Row>(
      'SELECT * FROM provisioning_keys WHERE expiry_audited = 0 AND (expires_at <= $1 OR (grace_until IS NOT NULL AND grace_until <= $1))',
      [now],
    );
    return rows.map(fromRow);
  },
  /** Claims a key's expiry audit (once across nodes); false when another claimed it. */
  async claimExpiryAudit(q: Queryable, id: string): Promise<boolean> {
    const claimed = await q.run(
      'UPDATE provisioning_keys SET expiry_audited = 1 WHERE id = $1 AND expiry_audited = 0',
      [id],
    );
    return claimed.changes > 0;
  },
};
