import type { Queryable } from '../port.js';
import { placementOf, placementValues, type ResourceRow, type StoredPlacement } from './resource-row.js';
import { tagsOf } from './tags.js';

/** A user-assigned identity as stored (migration 0005), with its principal's client id. */
export interface StoredUserIdentity extends StoredPlacement {
  rowId: string;
  principalId: string;
  /** The principal's app id ('' if it has none). */
  clientId: string;
  location: string;
  tags: Record<string, string>;
  createdAt: number;
}

interface Row extends ResourceRow {
  principal_id: string;
  app_id: string | null;
  location: string;
  tags: string;
}

const SELECT = `SELECT u.id, u.tenant_id, u.subscription_id, u.resource_group, u.name, u.principal_id, p.app_id,
  u.location, u.tags, u.created_at FROM user_identities u JOIN principals p ON p.id = u.principal_id`;

const fromRow = (r: Row): StoredUserIdentity => ({
  rowId: r.id,
  ...placementOf(r),
  principalId: r.principal_id,
  clientId: r.app_id ?? '',
  location: r.location,
  tags: tagsOf(r.tags),
  createdAt: Number(r.created_at),
});

/** The SQL behind user-assigned identities (src/management/identities.ts) and their links to apps. */
export const identityStore = {
  /** By lower-cased subscription, resource group and name. */
  async find(
    q: Queryable,
    tenantId: string,
    subscriptionId: string,
    resourceGroupLower: string,
    nameLower: string,
  ): Promise<StoredUserIdentity | undefined> {
    const r = await q.get<Row>(
      `${SELECT} WHERE u.tenant_id = $1 AND u.subscription_id = $2 AND u.resource_group_lower = $3 AND u.name_lower = $4`,
      [tenantId, subscriptionId, resourceGroupLower, nameLower],
    );
    return r && fromRow(r);
  },
  /** A subscription's identities (of one resource group, if given), by resource group and name. */
  async list(
    q: Queryable,
    tenantId: string,
    subscriptionId: string,
    resourceGroupLower?: string,
  ): Promise<StoredUserIdentity[]> {
    const rows = resourceGroupLower
      ? await q.all<Row>(
          `${SELECT} WHERE u.tenant_id = $1 AND u.subscription_id = $2 AND u.resource_group_lower = $3 ORDER BY u.name_lower`,
          [tenantId, subscriptionId, resourceGroupLower],
        )
      : await q.all<Row>(
          `${SELECT} WHERE u.tenant_id = $1 AND u.subscription_id = $2 ORDER BY u.resource_group_lower, u.name_lower`,
          [tenantId, subscriptionId],
        );
    return rows.map(fromRow);
  },
  /** The identities attached to an app, in the order they were attached. */
  async listByApp(q: Queryable, appRowId: string): Promise<StoredUserIdentity[]> {
    const rows = await q.all<Row>(
      `${SELECT} JOIN app_identities ai ON ai.identity_id = u.id WHERE ai.app_id = $1 ORDER BY ai.created_at, u.name_lower`,
      [appRowId],
    );
    return rows.map(fromRow);
  },
  async update(
    q: Queryable,
    rowId: string,
    u: Pick<StoredUserIdentity, 'tags' | 'location'> & { updatedAt: number },
  ): Promise<void> {
    const values = [JSON.stringify(u.tags), u.location, u.updatedAt, rowId];
    await q.run('UPDATE user_identities SET tags = $1, location = $2, updated_at = $3 WHERE id = $4', values);
  },
  async insert(q: Queryable, u: Omit<StoredUserIdentity, 'clientId'>): Promise<void> {
    await q.run(
      `INSERT INTO user_identities (id, tenant_id, subscription_id, resource_group, resource_group_lower, name, name_lower,
         principal_id, location, tags, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)`,
      [u.rowId, ...placementValues(u), u.principalId, u.location, JSON.stringify(u.tags), u.createdAt],
    );
  },
  /** Deletes the identity and its links to apps; returns the row ids of the apps it was attached to. */
  async delete(q: Queryable, rowId: string): Promise<string[]> {
    const attached = await q.all<{ app_id: string }>(
      'SELECT app_id FROM app_identities WHERE identity_id = $1',
      [rowId],
    );
    await q.run('DELETE FROM app_identities WHERE identity_id = $1', [rowId]);
    await q.run('DELETE FROM user_identities WHERE id = $1', [rowId]);
    return attached.map((a) => a.app_id);
  },
};
