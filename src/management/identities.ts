import type { Caller, RequestMeta } from '../access/caller.js';
import type { Access } from '../access/decision.js';
import type { AuditLog } from '../audit/log.js';
import type { Principals } from '../authority/principals.js';
import { LatchkeyError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import type { ChangeBus } from '../lib/events.js';
import { newGuid } from '../lib/ids.js';
import { identityStore, type StoredUserIdentity } from '../storage/management/identity-store.js';
import type { Database, Queryable } from '../storage/port.js';
import {
  armId,
  auditOf,
  checkName,
  checkTags,
  LOCATION_RE,
  parseArmId,
  readableAt,
  readableOnly,
  type Tags,
  UAI_ACTIONS,
  UAI_NAME_RE,
  UAI_TYPE,
  writableAt,
} from './identity-common.js';
import type { Scopes } from './scopes.js';

/** A user-assigned managed identity: a standalone resource many apps may use. */
export interface UserIdentity extends StoredUserIdentity {
  armId: string;
}

export const uaiFromStored = (r: StoredUserIdentity): UserIdentity => ({
  ...r,
  armId: armId(r.subscriptionId, r.resourceGroup, UAI_TYPE, r.name),
});

/** The ARM JSON of a user-assigned identity (api-version 2023-01-31). */
export const userIdentityView = (u: UserIdentity) => ({
  id: u.armId,
  name: u.name,
  type: UAI_TYPE,
  location: u.location,
  tags: u.tags,
  properties: { tenantId: u.tenantId, principalId: u.principalId, clientId: u.clientId },
});

/**
 * User-assigned identities (`Microsoft.ManagedIdentity/userAssignedIdentities`).
 * Deleting one deletes its principal (its role assignments and credentials go
 * with it) and detaches it from every app.
 */
export function createUserIdentities(deps: {
  db: Database;
  clock: Clock;
  bus: ChangeBus;
  principals: Principals;
  scopes: Scopes;
  access: Access;
  audit: AuditLog;
}) {
  const { db, clock, bus, principals, scopes, access, audit } = deps;

  const find = async (tenantId: string, sub: string, rg: string, name: string, q: Queryable = db) => {
    const r = await identityStore.find(q, tenantId, sub.toLowerCase(), rg.toLowerCase(), name.toLowerCase());
    return r && uaiFromStored(r);
  };

  const self = {
    find,
    /** By ARM id, in the tenant (undefined when absent or another type). */
    async byArmId(tenantId: string, id: string, q: Queryable = db): Promise<UserIdentity | undefined> {
      const p = parseArmId(id);
      if (!p || p.type.toLowerCase() !== UAI_TYPE.toLowerCase()) return undefined;
      return find(tenantId, p.subscriptionId, p.resourceGroup, p.name, q);
    },
    async createOrUpdate(
      caller: Caller,
      meta: RequestMeta,
      input: { subscriptionId: string; resourceGroup: string; name: string; location?: string; tags?: Tags },
    ): Promise<{ identity: UserIdentity; created: boolean }> {
      checkName(UAI_NAME_RE, input.name, 'identity', '3–128 letters, digits, hyphens and underscores.');
      if (input.location !== undefined && !LOCATION_RE.test(input.location))
        throw new LatchkeyError('BadParameter', 'Invalid location.');
      const tags = checkTags(input.tags);
      // duplicate-ok: the PUT of apps and hosts opens alike (the shared writableAt, then the write's transaction).
      const { subscriptionId, resourceGroup, id } = await writableAt(
        access,
        scopes,
        caller,
        UAI_ACTIONS.write,
        UAI_TYPE,
        input,
      );
      return db.transaction(async (tx) => {
        await audit.hold(tx); // lock order: the log's lock first (audit/log.ts)
        const existing = await find(caller.tenantId, subscriptionId, resourceGroup, input.name, tx);
        const now = clock.now();
        if (existing) {
          await identityStore.update(tx, existing.rowId, {
            tags: input.tags ? tags : existing.tags,
            location: input.location ?? existing.location,
            updatedAt: now,
          });
          await audit.append(tx, auditOf(caller, meta, 'UserAssignedIdentityUpdate', existing.armId));
          return {
            identity: (await find(caller.tenantId, subscriptionId, resourceGroup, input.name, tx))!,
            created: false,
          };
        }
        const p = await principals.createServicePrincipal(
          caller.tenantId,
          { displayName: input.name, kind: 'managedIdentity', resourceId: id },
          tx,
        );
        await identityStore.insert(tx, {
          rowId: newGuid(),
          tenantId: caller.tenantId,
          subscriptionId: subscriptionId,
          resourceGroup: resourceGroup,
          name: input.name,
          principalId: p.id,
          location: input.location ?? 'local',
          tags,
          createdAt: now,
        });
        await audit.append(
          tx,
          auditOf(caller, meta, 'UserAssignedIdentityCreate', id, { principalId: p.id }),
        );
        return {
          identity: (await find(caller.tenantId, subscriptionId, resourceGroup, input.name, tx))!,
          created: true,
        };
      });
    },
    get: (caller: Caller, sub: string, rg: string, name: string): Promise<UserIdentity> =>
      readableAt(access, caller, UAI_ACTIONS.read, UAI_TYPE, find, [sub, rg, name]),
    async list(caller: Caller, sub: string, rg?: string): Promise<UserIdentity[]> {
      await scopes.subscription(caller.tenantId, sub);
      const rgLower = rg ? rg.toLowerCase() : undefined;
      const rows = await identityStore.list(db, caller.tenantId, sub.toLowerCase(), rgLower);
      return readableOnly(access, caller, UAI_ACTIONS.read, rows.map(uaiFromStored));
    },
    /** Deletes the identity: its principal (assignments, credentials) and every attachment. False if absent. */
    async delete(caller: Caller, meta: RequestMeta, sub: string, rg: string, name: string): Promise<boolean> {
      const u = await find(caller.tenantId, sub, rg, name);
      if (!u) {
        await access.require(caller, UAI_ACTIONS.delete, armId(sub, rg, UAI_TYPE, name));
        return false;
      }
      await access.require(caller, UAI_ACTIONS.delete, u.armId);
      const apps = await db.transaction(async (tx) => {
        await audit.hold(tx); // lock order: the log's lock first (audit/log.ts)
        const attached = await identityStore.delete(tx, u.rowId);
        await principals.delete(u.tenantId, u.principalId, tx);
        await access.deleteAtOrBelow(u.tenantId, u.armId, tx);
        await audit.append(
          tx,
          auditOf(caller, meta, 'UserAssignedIdentityDelete', u.armId, { detachedFrom: attached.length }),
        );
        return attached;
      });
      for (const a of apps) bus.publish('app', a);
      return true;
    },
  };
  return self;
}
export type UserIdentities = ReturnType<typeof createUserIdentities>;
