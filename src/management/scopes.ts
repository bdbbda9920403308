import { LatchkeyError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import { isGuid, newGuid } from '../lib/ids.js';
import type { Database, Queryable } from '../storage/port.js';

export interface Subscription {
  subscriptionId: string;
  tenantId: string;
  displayName: string;
}
export interface ResourceGroup {
  id: string;
  name: string;
  subscriptionId: string;
  tenantId: string;
  location: string;
}

export const RG_NAME_RE = /^[-\w._()]{1,90}$/;
export const DEFAULT_RESOURCE_GROUP = 'default';

/** Subscriptions and resource groups: the ARM scopes resources live in. Each tenant gets a default of each. */
export function createScopes(deps: { db: Database; clock: Clock }) {
  const { db, clock } = deps;
  return {
    async defaultSubscription(tenantId: string, q: Queryable = db): Promise<Subscription> {
      const r = await q.get<{ id: string; display_name: string }>(
        'SELECT id, display_name FROM subscriptions WHERE tenant_id = $1 ORDER BY created_at LIMIT 1',
        [tenantId],
      );
      if (r) return { subscriptionId: r.id, tenantId, displayName: r.display_name };
      const id = newGuid();
      await q.run(
        'INSERT INTO subscriptions (id, tenant_id, display_name, created_at) VALUES ($1, $2, $3, $4)',
        [id, tenantId, 'Default', clock.now()],
      );
      await this.ensureResourceGroup(tenantId, id, DEFAULT_RESOURCE_GROUP, q);
      return { subscriptionId: id, tenantId, displayName: 'Default' };
    },
    async subscription(tenantId: string, subscriptionId: string, q: Queryable = db): Promise<Subscription> {
      const r = isGuid(subscriptionId)
        ? await q.get<{ id: string; display_name: string }>(
            'SELECT id, display_name FROM subscriptions WHERE id = $1 AND tenant_id = $2',
            [subscriptionId.toLowerCase(), tenantId],
          )
        : undefined;
      if (!r)
        throw new LatchkeyError(
          'ResourceNotFound',
          `The subscription '${subscriptionId.slice(0, 64)}' could not be found.`,
        );
      return { subscriptionId: r.id, tenantId, displayName: r.display_name };
    },
    async listSubscriptions(tenantId: string): Promise<Subscription[]> {
      const rows = await db.all<{ id: string; display_name: string }>(
        'SELECT id, display_name FROM subscriptions WHERE tenant_id = $1 ORDER BY created_at',
        [tenantId],
      );
      return rows.map((r) => ({ subscriptionId: r.id, tenantId, displayName: r.display_name }));
    },
    async resourceGroup(
      tenantId: string,
      subscriptionId: string,
      name: string,
      q: Queryable = db,
    ): Promise<ResourceGroup> {
      const r = await q.get<{ name: string; location: string }>(
        'SELECT name, location FROM resource_groups WHERE subscription_id = $1 AND name_lower = $2 AND tenant_id = $3',
        [subscriptionId.toLowerCase(), name.toLowerCase(), tenantId],
      );
      if (!r)
        throw new LatchkeyError(
          'ResourceNotFound',
          `Resource group '${name.slice(0, 90)}' could not be found.`,
        );
      return {
        id: `/subscriptions/${subscriptionId.toLowerCase()}/resourceGroups/${r.name}`,
        name: r.name,
        subscriptionId: subscriptionId.toLowerCase(),
        tenantId,
        location: r.location,
      };
    },
    async ensureResourceGroup(
      tenantId: string,
      subscriptionId: string,
      name: string,
      q: Queryable = db,
      location = 'local',
    ) {
      if (!RG_NAME_RE.test(name) || name.endsWith('.')) {
        throw new LatchkeyError(
          'BadParameter',
          'A resource group name is 1–90 letters, digits, and -_.() characters.',
        );
      }
      await q.run(
        'INSERT INTO resource_groups (subscription_id, name_lower, name, tenant_id, location, created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (subscription_id, name_lower) DO NOTHING',
        [subscriptionId.toLowerCase(), name.toLowerCase(), name, tenantId, location, clock.now()],
      );
      return this.resourceGroup(tenantId, subscriptionId, name, q);
    },
    /** Removes the resource group's row (its resources are deleted first, by their services). */
    async deleteResourceGroup(tenantId: string, subscriptionId: string, name: string, q: Queryable = db) {
      await q.run(
        'DELETE FROM resource_groups WHERE subscription_id = $1 AND name_lower = $2 AND tenant_id = $3',
        [subscriptionId.toLowerCase(), name.toLowerCase(), tenantId],
      );
    },
    async listResourceGroups(tenantId: string, subscriptionId: string): Promise<ResourceGroup[]> {
      const rows = await db.all<{ name: string; location: string }>(
        'SELECT name, location FROM resource_groups WHERE subscription_id = $1 AND tenant_id = $2 ORDER BY name_lower',
        [subscriptionId.toLowerCase(), tenantId],
      );
      return rows.map((r) => ({
        id: `/subscriptions/${subscriptionId.toLowerCase()}/resourceGroups/${r.name}`,
        name: r.name,
        subscriptionId: subscriptionId.toLowerCase(),
        tenantId,
        location: r.location,
      }));
    },
  };
}
export type Scopes = ReturnType<typeof createScopes>;
