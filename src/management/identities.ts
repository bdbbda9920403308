import type { Caller, RequestMeta } from '../access/caller.js';
import type { Access } from '../access/decision.js';
import type { AuditLog } from '../audit/log.js';
import type { Principals } from '../authority/principals.js';
import { LatchkeyError } from '../errors/index.js';
import type { Clock } from '../lib/clock.js';
import type { ChangeBus } from '../lib/events.js';
import { newGuid } from '../lib/ids.js';
import type { Database, Queryable } from '../storage/port.js';
import {
  armId,
  auditOf,
  checkName,
  checkTags,
  LOCATION_RE,
  parseArmId,
  parseTags,
  resourceNotFound,
  type Tags,
  UAI_ACTIONS,
  UAI_NAME_RE,
  UAI_TYPE,
} from './identity-common.js';
import type { Scopes } from './scopes.js';

/** A user-assigned managed identity: a standalone resource many apps may use. */
export interface UserIdentity {
  rowId: string;
  tenantId: string;
  subscriptionId: string;
  resourceGroup: string;
  name: string;
  armId: string;
  principalId: string;
  clientId: string;
  location: string;
  tags: Tags;
  createdAt: number;
}

interface Row {
  id: string;
  tenant_id: string;
  subscription_id: string;
  resource_group: string;
  name: string;
  principal_id: string;
  app_id: string | null;
  location: string;
  tags: string;
  created_at: number;
}

export const UAI_SELECT = `SELECT u.id, u.tenant_id, u.subscription_id, u.resource_group, u.name, u.principal_id, p.app_id,
  u.location, u.tags, u.created_at FROM user_identities u JOIN principals p ON p.id = u.principal_id`;

export const uaiFromRow = (r: Row): UserIdentity => ({
  rowId: r.id,
  tenantId: r.tenant_id,
  subscriptionId: r.subscription_id,
  resourceGroup: r.resource_group,
  name: r.name,
  armId: armId(r.subscription_id, r.resource_group, UAI_TYPE, r.name),
  principalId: r.principal_id,
  clientId: r.app_id ?? '',
  location: r.location,
  tags: parseTags(r.tags),
  createdAt: Number(r.created_at),
});
export type UaiRow = Row;

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
    const r = await q.get<Row>(
      `${UAI_SELECT} WHERE u.tenant_id = $1 AND u.subscription_id = $2 AND u.resource_group_lower = $3 AND u.name_lower = $4`,
      [tenantId, sub.toLowerCase(), rg.toLowerCase(), name.toLowerCase()],
    );
    return r && uaiFromRow(r);
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
      const sub = await scopes.subscription(caller.tenantId, input.subscriptionId);
      const rg = await scopes.resourceGroup(caller.tenantId, sub.subscriptionId, input.resourceGroup);
      const id = armId(sub.subscriptionId, rg.name, UAI_TYPE, input.name);
      await access.require(caller, UAI_ACTIONS.write, id);
      return db.transaction(async (tx) => {
        const existing = await find(caller.tenantId, sub.subscriptionId, rg.name, input.name, tx);
        const now = clock.now();
        if (existing) {
          await tx.run('UPDATE user_identities SET tags = $1, location = $2, updated_at = $3 WHERE id = $4', [
            JSON.stringify(input.tags ? tags : existing.tags),
            input.location ?? existing.location,
            now,
            existing.rowId,
          ]);
          await audit.append(tx, auditOf(caller, meta, 'UserAssignedIdentityUpdate', existing.armId));
          return {
            identity: (await find(caller.tenantId, sub.subscriptionId, rg.name, input.name, tx))!,
            created: false,
          };
        }
        const p = await principals.createServicePrincipal(
          caller.tenantId,
          { displayName: input.name, kind: 'managedIdentity', resourceId: id },
          tx,
        );
        await tx.run(
          `INSERT INTO user_identities (id, tenant_id, subscription_id, resource_group, resource_group_lower, name, name_lower,
             principal_id, location, tags, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)`,
          [
            newGuid(),
            caller.tenantId,
            sub.subscriptionId,
            rg.name,
            rg.name.toLowerCase(),
            input.name,
            input.name.toLowerCase(),
            p.id,
            input.location ?? 'local',
            JSON.stringify(tags),
            now,
          ],
        );
        await audit.append(
          tx,
          auditOf(caller, meta, 'UserAssignedIdentityCreate', id, { principalId: p.id }),
        );
        return {
          identity: (await find(caller.tenantId, sub.subscriptionId, rg.name, input.name, tx))!,
          created: true,
        };
      });
    },
    async get(caller: Caller, sub: string, rg: string, name: string): Promise<UserIdentity> {
      const u = await find(caller.tenantId, sub, rg, name);
      if (!u) throw resourceNotFound(UAI_TYPE, name);
      await access.require(caller, UAI_ACTIONS.read, u.armId);
      return u;
    },
    async list(caller: Caller, sub: string, rg?: string): Promise<UserIdentity[]> {
      await scopes.subscription(caller.tenantId, sub);
      const rows = rg
        ? await db.all<Row>(
            `${UAI_SELECT} WHERE u.tenant_id = $1 AND u.subscription_id = $2 AND u.resource_group_lower = $3 ORDER BY u.name_lower`,
            [caller.tenantId, sub.toLowerCase(), rg.toLowerCase()],
          )
        : await db.all<Row>(
            `${UAI_SELECT} WHERE u.tenant_id = $1 AND u.subscription_id = $2 ORDER BY u.resource_group_lower, u.name_lower`,
            [caller.tenantId, sub.toLowerCase()],
          );
      const out: UserIdentity[] = [];
      for (const u of rows.map(uaiFromRow))
        if (await access.allows(caller, UAI_ACTIONS.read, u.armId)) out.push(u);
      return out;
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
        const attached = await tx.all<{ app_id: string }>(
          'SELECT app_id FROM app_identities WHERE identity_id = $1',
          [u.rowId],
        );
        await tx.run('DELETE FROM app_identities WHERE identity_id = $1', [u.rowId]);
        await tx.run('DELETE FROM user_identities WHERE id = $1', [u.rowId]);
        await principals.delete(u.tenantId, u.principalId, tx);
        await access.deleteAtOrBelow(u.tenantId, u.armId, tx);
        await audit.append(
          tx,
          auditOf(caller, meta, 'UserAssignedIdentityDelete', u.armId, { detachedFrom: attached.length }),
        );
        return attached;
      });
      for (const a of apps) bus.publish('app', a.app_id);
      return true;
    },
  };
  return self;
}
export type UserIdentities = ReturnType<typeof createUserIdentities>;
