import type { Caller } from '../access/caller.js';
import type { Access } from '../access/decision.js';
import type { ResourceGroup, Scopes } from './scopes.js';

/** Resource-group actions, checked at the group's ARM id. */
export const RG_ACTIONS = {
  read: 'Microsoft.Resources/subscriptions/resourceGroups/read',
  write: 'Microsoft.Resources/subscriptions/resourceGroups/write',
} as const;

/**
 * Reads of the subscription's resource groups as a signed-in caller: only the groups the caller
 * may read (`resourceGroups/read` at the group), as the management API lists them. The console and
 * the API read resource groups through this, never through the unchecked `scopes` lookups.
 */
export function createReadableScopes(deps: {
  scopes: Pick<Scopes, 'listResourceGroups'>;
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
  };
}
export type ReadableScopes = ReturnType<typeof createReadableScopes>;
