import { LatchkeyError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import { isGuid, newGuid } from '../lib/ids.js';
import { scopeStore } from '../storage/management/scope-store.js';
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
      const r = await scopeStore.firstSubscription(q, tenantId);
      if (r) return { subscriptionId: r.id, tenantId, displayName: r.displayName };
      const id = newGuid();
      await scopeStore.insertSubscription(q, {
        id,
        tenantId,
        displayName: 'Default',
        createdAt: clock.now(),
      });
      await this.ensureResourceGroup(tenantId, id, DEFAULT_RESOURCE_GROUP, q);
      return { subscriptionId: id, tenantId, displayName: 'Default' };
    },
    async subscription(tenantId: string, subscriptionId: string, q: Queryable = db): Promise<Subscription> {
      const r = isGuid(subscriptionId)
        ? await scopeStore.findSubscription(q, tenantId, subscriptionId.toLowerCase())
        : undefined;
      if (!r)
        throw new LatchkeyError(
          'ResourceNotFound',
          `The subscription '${subscriptionId.slice(0, 64)}' could not be found.`,
        );
      return { subscriptionId: r.id, tenantId, displayName: r.displayName };
    },
    async listSubscriptions(tenantId: string): Promise<Subscription[]> {
      const rows = await scopeStore.listSubscriptions(db, tenantId);
      return rows.map((r) => ({ subscriptionId: r.id, tenantId, displayName: r.displayName }));
    },
    async resourceGroup(
      tenantId: string,
      subscriptionId: string,
      name: string,
      q: Queryable = db,
    ): Promise<ResourceGroup> {
      const r = await scopeStore.findResourceGroup(
        q,
        tenantId,
        subscriptionId.toLowerCase(),
        name.toLowerCase(),
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
      await scopeStore.insertResourceGroupIfNone(q, {
        subscriptionId: subscriptionId.toLowerCase(),
        name,
        tenantId,
        location,
        createdAt: clock.now(),
      });
      return this.resourceGroup(tenantId, subscriptionId, name, q);
    },
    /** Removes the resource group's row (its resources are deleted first, by their services). */
    async deleteResourceGroup(tenantId: string, subscriptionId: string, name: string, q: Queryable = db) {
      await scopeStore.deleteResourceGroup(q, tenantId, subscriptionId.toLowerCase(), name);
    },
    async listResourceGroups(tenantId: string, subscriptionId: string): Promise<ResourceGroup[]> {
      const rows = await scopeStore.listResourceGroups(db, tenantId, subscriptionId.toLowerCase());
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
