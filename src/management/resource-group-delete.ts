import { type Caller, callerEvent, type RequestMeta } from '../access/caller.js';
import type { Access } from '../access/decision.js';
import type { AuditLog } from '../audit/log.js';
import { LatchkeyError } from '../errors/index.js';
import type { Database } from '../storage/port.js';
import type { Apps } from './apps.js';
import type { Hosts } from './hosts.js';
import type { UserIdentities } from './identities.js';
import type { Scopes } from './scopes.js';

/** The action `DELETE .../resourcegroups/{name}` needs at the group (Owner and Contributor have it). */
export const RG_DELETE_ACTION = 'Microsoft.Resources/subscriptions/resourceGroups/delete';

/** The vaults of a group, as the vault service lists and deletes them (vault/ sits above management/). */
export interface GroupVaults {
  list(caller: Caller, subscriptionId: string, resourceGroup: string): Promise<{ name: string }[]>;
  delete(
    caller: Caller,
    meta: RequestMeta,
    ref: { subscriptionId: string; resourceGroup: string; name: string },
  ): Promise<unknown>;
}

export type ResourceGroupDeleteDeps = {
  db: Database;
  access: Pick<Access, 'require' | 'deleteAtOrBelow'>;
  audit: Pick<AuditLog, 'append' | 'hold'>;
  scopes: Pick<Scopes, 'subscription' | 'resourceGroup' | 'deleteResourceGroup'>;
  apps: Pick<Apps, 'list' | 'delete'>;
  userIdentities: Pick<UserIdentities, 'list' | 'delete'>;
  hosts: Pick<Hosts, 'list' | 'delete'>;
  vaults: GroupVaults;
};

/**
 * Deletes a resource group and everything in it, as Azure does: its apps (with their
 * system-assigned identities), user-assigned identities, hosts and vaults — vaults are
 * soft-deleted, recoverable for their retention period once a group of that name exists
 * again — then the role assignments at or below the group and the group itself.
 *
 * Steps, each through its own service as the caller (authorized and audited one by one):
 * `authorize` (the delete action at the group, before anything is looked up: a Reader gets 403
 * and learns nothing), `find` (404 for a missing group), `refuse` (a group holding the built-in
 * host cannot be deleted, nor one whose host runs an app of another group — both checked before
 * anything is removed), then the deletes.
 */
export async function deleteResourceGroup(
  s: ResourceGroupDeleteDeps,
  caller: Caller,
  meta: RequestMeta,
  subscriptionId: string,
  name: string,
): Promise<void> {
  // At the group as named first: a caller who may not delete it hears 403 whether or not it exists.
  await s.access.require(caller, RG_DELETE_ACTION, `/subscriptions/${subscriptionId}/resourceGroups/${name}`);
  const sub = (await s.scopes.subscription(caller.tenantId, subscriptionId)).subscriptionId;
  await s.access.require(caller, RG_DELETE_ACTION, `/subscriptions/${sub}/resourceGroups/${name}`);
  const group = await s.scopes.resourceGroup(caller.tenantId, sub, name);
  const hosts = await s.hosts.list(caller, sub, group.name);
  const builtIn = hosts.find((h) => h.builtIn);
  if (builtIn)
    throw new LatchkeyError(
      'Conflict',
      `Resource group '${group.name}' holds the built-in local host '${builtIn.name}', which cannot be deleted.`,
    );
  // An app of another group placed on a host of this one would stop the host's delete midway.
  const here = new Set(hosts.map((h) => h.id));
  const apps = await s.apps.list(caller, sub);
  const foreign = apps.find(
    (a) => here.has(a.hostId) && a.resourceGroup.toLowerCase() !== group.name.toLowerCase(),
  );
  if (foreign)
    throw new LatchkeyError(
      'Conflict',
      `App '${foreign.name}' of resource group '${foreign.resourceGroup}' runs on a host of '${group.name}': move or delete it first.`,
    );
  for (const a of apps.filter((x) => x.resourceGroup.toLowerCase() === group.name.toLowerCase()))
    await s.apps.delete(caller, meta, sub, group.name, a.name);
  for (const u of await s.userIdentities.list(caller, sub, group.name))
    await s.userIdentities.delete(caller, meta, sub, group.name, u.name);
  for (const h of hosts) await s.hosts.delete(caller, meta, sub, group.name, h.name);
  for (const v of await s.vaults.list(caller, sub, group.name))
    await s.vaults.delete(caller, meta, { subscriptionId: sub, resourceGroup: group.name, name: v.name });
  await s.db.transaction(async (tx) => {
    await s.audit.hold(tx); // lock order: the log's lock first (audit/log.ts)
    await s.access.deleteAtOrBelow(caller.tenantId, group.id, tx);
    await s.scopes.deleteResourceGroup(caller.tenantId, sub, group.name, tx);
    await s.audit.append(
      tx,
      callerEvent(caller, meta, { operation: 'ResourceGroupDelete', target: group.id, status: 200 }),
    );
  });
}
