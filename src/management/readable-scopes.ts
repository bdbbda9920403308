import type { Caller } from '../access/caller.js';
import type { Access } from '../access/decision.js';
import type { ResourceGroup, Scopes } from './scopes.js';

/** Resource-group actions, checked at the group's ARM id. */
export const RG_ACTIONS = {
  read: 'Microsoft.Resources/subscriptions/resourceGroups/read',
  write: 'Microsoft.Resources/subscriptions/resourceGroups/write',
} as const;
const SUBSCRIPTION_READ = 'Microsoft.Resources/subscriptions/read';

/**
 * Before a list of resources in a subscription or one of its resource groups: whether the list
 * should first make sure the scope exists (a 404 for none). Only for a caller who may read the
 * scope (at its id as named): any other one gets the list, filtered by what it may read, which is
 * empty for a scope that does not exist, so whether a scope exists is never its answer.
 */
export const scopeReadable = (
  access: Pick<Access, 'allows'>,
  caller: Caller,
  subscriptionId: string,
  resourceGroup?: string,
): Promise<boolean> =>
  resourceGroup === undefined
    ? access.allows(caller, SUBSCRIPTION_READ, `/subscriptions/${subscriptionId}`)
    : access.allows(
        caller,
        RG_ACTIONS.read,
        `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}`,
      );

/**
 * Reads of the subscription's resource groups as a signed-in caller: only the groups the caller
 * may read (`resourceGroups/read` at the group), as the management API lists them. The console and
 * the API read resource groups through this, never through the unchecked `scopes` lookups.
 */
export function createReadableScopes(deps: {
  scopes: Pick<Scopes, 'listResourceGroups' | 'subscription' | 'resourceGroup'>;
  access: Pick<Access, 'allows'>;
}) {
  const { scopes, access } = deps;
  return {
    /** The groups the caller may read; `limit` bounds how many groups are looked at (each is a decision). */
    async resourceGroups(caller: Caller, subscriptionId: string, limit = Infinity): Promise<ResourceGroup[]> {
      const all = await scopes.listResourceGroups(caller.tenantId, subscriptionId);
      const out: ResourceGroup[] = [];
      for (const g of all.slice(0, limit))
        if (await access.allows(caller, RG_ACTIONS.read, g.id)) out.push(g);
      return out;
    },
    /**
     * Before a list in a subscription or resource group: a 404 when it does not exist, told only
     * to a caller who may read it ({@link scopeReadable}).
     */
    async listable(caller: Caller, subscriptionId: string, resourceGroup?: string): Promise<void> {
      if (!(await scopeReadable(access, caller, subscriptionId, resourceGroup))) return;
      const sub = await scopes.subscription(caller.tenantId, subscriptionId);
      if (resourceGroup !== undefined)
        await scopes.resourceGroup(caller.tenantId, sub.subscriptionId, resourceGroup);
    },
  };
}
export type ReadableScopes = ReturnType<typeof createReadableScopes>;
