import type { Queryable, SqlValue } from '../port.js';

export type Sku = 'standard' | 'premium';

export interface AccessPolicyPermissions {
  keys?: string[];
  secrets?: string[];
  certificates?: string[];
  storage?: string[];
}

/** A vault access policy entry (used when `enableRbacAuthorization` is false). */
export interface AccessPolicy {
  tenantId: string;
  objectId: string;
  applicationId?: string;
  permissions: AccessPolicyPermissions;
}

/** A stored vault (times in epoch ms). `id` is internal; the domain adds the ARM id (vault/model.ts). */
export interface VaultRecord {
  id: string;
  name: string;
  nameLower: string;
  tenantId: string;
  subscriptionId: string;
  resourceGroup: string;
  location: string;
  sku: Sku;
  enableRbacAuthorization: boolean;
  softDeleteRetentionInDays: number;
  enablePurgeProtection: boolean;
  accessPolicies: AccessPolicy[];
  tags: Record<string, string>;
  deletedAt: number | null;
  scheduledPurgeAt: number | null;
  createdAt: number;
  updatedAt: number;
}

interface VaultRow {
  id: string;
  name: string;
  name_lower: string;
  tenant_id: string;
  subscription_id: string;
  resource_group: string;
  location: string;
  sku: string;
  enable_rbac_authorization: number;
  soft_delete_retention_days: number;
  enable_purge_protection: number;
  access_policies: string;
  tags: string;
  deleted_at: number | null;
  scheduled_purge_at: number | null;
  created_at: number;
  updated_at: number;
}

const fromRow = (r: VaultRow): VaultRecord => ({
  id: r.id,
  name: r.name,
  nameLower: r.name_lower,
  tenantId: r.tenant_id,
  subscriptionId: r.subscription_id,
  resourceGroup: r.resource_group,
  location: r.location,
  sku: r.sku === 'premium' ? 'premium' : 'standard',
  enableRbacAuthorization: Number(r.enable_rbac_authorization) === 1,
  softDeleteRetentionInDays: Number(r.soft_delete_retention_days),
  enablePurgeProtection: Number(r.enable_purge_protection) === 1,
  accessPolicies: JSON.parse(r.access_policies) as AccessPolicy[],
  tags: JSON.parse(r.tags) as Record<string, string>,
  deletedAt: r.deleted_at === null ? null : Number(r.deleted_at),
  scheduledPurgeAt: r.scheduled_purge_at === null ? null : Number(r.scheduled_purge_at),
  createdAt: Number(r.created_at),
  updatedAt: Number(r.updated_at),
});

/** The columns location … tags, in table order, as both writes bind them. */
const properties = (v: VaultRecord): SqlValue[] => [
  v.location,
  v.sku,
  v.enableRbacAuthorization ? 1 : 0,
  v.softDeleteRetentionInDays,
  v.enablePurgeProtection ? 1 : 0,
  JSON.stringify(v.accessPolicies),
  JSON.stringify(v.tags),
];

/**
 * The SQL behind vaults (migration 0004). Names are unique per installation
 * (deleted vaults included), so a vault is found by its lower-case name.
 */
export const vaultStore = {
  /** The vault of this name, deleted or not, in any tenant. */
  async byName(q: Queryable, nameLower: string): Promise<VaultRecord | undefined> {
    const r = await q.get<VaultRow>('SELECT * FROM vaults WHERE name_lower = $1', [nameLower]);
    return r && fromRow(r);
  },
  /** A new vault, created and last updated at `createdAt`, not deleted. */
  async insert(q: Queryable, v: VaultRecord): Promise<void> {
    await q.run(
      `INSERT INTO vaults (id, name, name_lower, tenant_id, subscription_id, resource_group, location, sku,
         enable_rbac_authorization, soft_delete_retention_days, enable_purge_protection, access_policies, tags,
         deleted_at, scheduled_purge_at, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, NULL, NULL, $14, $14)`,
      [
        v.id,
        v.name,
        v.nameLower,
        v.tenantId,
        v.subscriptionId,
        v.resourceGroup,
        ...properties(v),
        v.createdAt,
      ],
    );
  },
  /** Writes the properties a vault may change (its name and place are fixed). */
  async update(q: Queryable, v: VaultRecord): Promise<void> {
    await q.run(
      `UPDATE vaults SET location = $2, sku = $3, enable_rbac_authorization = $4, soft_delete_retention_days = $5,
         enable_purge_protection = $6, access_policies = $7, tags = $8, deleted_at = $9, scheduled_purge_at = $10,
         updated_at = $11 WHERE id = $1`,
      [v.id, ...properties(v), v.deletedAt, v.scheduledPurgeAt, v.updatedAt],
    );
  },
  /** Removes the vault and its secrets for good (its keys go with it by cascade, migration 0007). */
  async purge(q: Queryable, vaultId: string): Promise<void> {
    await q.run('DELETE FROM secret_versions WHERE vault_id = $1', [vaultId]);
    await q.run('DELETE FROM secrets WHERE vault_id = $1', [vaultId]);
    await q.run('DELETE FROM vaults WHERE id = $1', [vaultId]);
  },
  /** Every active vault's name (all tenants), in name order. */
  async activeNames(q: Queryable): Promise<string[]> {
    const rows = await q.all<{ name_lower: string }>(
      'SELECT name_lower FROM vaults WHERE deleted_at IS NULL ORDER BY name_lower',
    );
    return rows.map((r) => r.name_lower);
  },
  /** The active (or, with `deleted`, the soft-deleted) vaults of a subscription, in name order. */
  async inSubscription(
    q: Queryable,
    tenantId: string,
    subscriptionId: string,
    deleted: boolean,
  ): Promise<VaultRecord[]> {
    const rows = await q.all<VaultRow>(
      deleted
        ? 'SELECT * FROM vaults WHERE tenant_id = $1 AND subscription_id = $2 AND deleted_at IS NOT NULL ORDER BY name_lower'
        : 'SELECT * FROM vaults WHERE tenant_id = $1 AND subscription_id = $2 AND deleted_at IS NULL ORDER BY name_lower',
      [tenantId, subscriptionId],
    );
    return rows.map(fromRow);
  },
  /** Soft-deleted vaults past their scheduled purge date, oldest first. */
  async due(q: Queryable, now: number, limit: number): Promise<VaultRecord[]> {
    const rows = await q.all<VaultRow>(
      'SELECT * FROM vaults WHERE scheduled_purge_at IS NOT NULL AND scheduled_purge_at <= $1 ORDER BY scheduled_purge_at LIMIT $2',
      [now, limit],
    );
    return rows.map(fromRow);
  },
  /** The vault if it is still due for purge (not recovered meanwhile). */
  async stillDue(q: Queryable, vaultId: string, now: number): Promise<VaultRecord | undefined> {
    const r = await q.get<VaultRow>(
      'SELECT * FROM vaults WHERE id = $1 AND scheduled_purge_at IS NOT NULL AND scheduled_purge_at <= $2',
      [vaultId, now],
    );
    return r && fromRow(r);
  },
};
