import type { Queryable } from '../port.js';

/** A subscription as stored (migration 0003). */
export interface StoredSubscription {
  id: string;
  displayName: string;
}
/** A resource group as stored: its name as first written, and its location. */
export interface StoredResourceGroup {
  name: string;
  location: string;
}

interface SubscriptionRow {
  id: string;
  display_name: string;
}
const subscriptionOf = (r: SubscriptionRow): StoredSubscription => ({
  id: r.id,
  displayName: r.display_name,
});

/** The SQL behind subscriptions and resource groups (src/management/scopes.ts). */
export const scopeStore = {
  /** The tenant's first subscription. */
  async firstSubscription(q: Queryable, tenantId: string): Promise<StoredSubscription | undefined> {
    const r = await q.get<SubscriptionRow>(
      'SELECT id, display_name FROM subscriptions WHERE tenant_id = $1 ORDER BY created_at LIMIT 1',
      [tenantId],
    );
    return r && subscriptionOf(r);
  },
  async insertSubscription(
    q: Queryable,
    s: { id: string; tenantId: string; displayName: string; createdAt: number },
  ): Promise<void> {
    await q.run(
      'INSERT INTO subscriptions (id, tenant_id, display_name, created_at) VALUES ($1, $2, $3, $4)',
      [s.id, s.tenantId, s.displayName, s.createdAt],
    );
  },
  // duplicate-ok: a store operation of the house pattern (signature, one statement, row mapping); the SQL differs
  async findSubscription(
    q: Queryable,
    tenantId: string,
    id: string,
  ): Promise<StoredSubscription | undefined> {
    const r = await q.get<SubscriptionRow>(
      'SELECT id, display_name FROM subscriptions WHERE id = $1 AND tenant_id = $2',
      [id, tenantId],
    );
    return r && subscriptionOf(r);
  },
  async listSubscriptions(q: Queryable, tenantId: string): Promise<StoredSubscription[]> {
    const rows = await q.all<SubscriptionRow>(
      'SELECT id, display_name FROM subscriptions WHERE tenant_id = $1 ORDER BY created_at',
      [tenantId],
    );
    return rows.map(subscriptionOf);
  },
  /** By lower-cased subscription id and name. */
  findResourceGroup(
    q: Queryable,
    tenantId: string,
    subscriptionId: string,
    nameLower: string,
  ): Promise<StoredResourceGroup | undefined> {
    return q.get<StoredResourceGroup>(
      'SELECT name, location FROM resource_groups WHERE subscription_id = $1 AND name_lower = $2 AND tenant_id = $3',
      [subscriptionId, nameLower, tenantId],
    );
  },
  /** Adds a resource group unless one of that name exists in the subscription. */
  async insertResourceGroupIfNone(
    q: Queryable,
    g: { subscriptionId: string; name: string; tenantId: string; location: string; createdAt: number },
  ): Promise<void> {
    await q.run(
      'INSERT INTO resource_groups (subscription_id, name_lower, name, tenant_id, location, created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (subscription_id, name_lower) DO NOTHING',
      [g.subscriptionId, g.name.toLowerCase(), g.name, g.tenantId, g.location, g.createdAt],
    );
  },
  listResourceGroups(q: Queryable, tenantId: string, subscriptionId: string): Promise<StoredResourceGroup[]> {
    return q.all<StoredResourceGroup>(
      'SELECT name, location FROM resource_groups WHERE subscription_id = $1 AND tenant_id = $2 ORDER BY name_lower',
      [subscriptionId, tenantId],
    );
  },
  /** Removes a resource group's row (its resources are deleted first, by their services). */
  async deleteResourceGroup(
    q: Queryable,
    tenantId: string,
    subscriptionId: string,
    name: string,
  ): Promise<void> {
    await q.run(
      'DELETE FROM resource_groups WHERE subscription_id = $1 AND name_lower = $2 AND tenant_id = $3',
      [subscriptionId, name.toLowerCase(), tenantId],
    );
  },
};
