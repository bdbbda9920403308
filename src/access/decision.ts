import { LatchkeyError } from '../errors/index.js';
import { type CacheStats, cacheStats } from '../lib/cache-stats.js';
import type { Clock } from '../lib/clock.js';
import type { ChangeBus } from '../lib/events.js';
import { isGuid, newGuid } from '../lib/ids.js';
import { assignmentStore, type StoredRoleAssignment } from '../storage/access/assignment-store.js';
import type { Database, Queryable } from '../storage/port.js';
import type { Caller } from './caller.js';
import { scopeFor, scopeNeeded } from './provisioning-scopes.js';
import { actionMatches, type RoleDefinition, roleAllows, roleById, rolesAllowing } from './roles.js';

export interface RoleAssignment {
  id: string;
  tenantId: string;
  principalId: string;
  roleDefinitionId: string;
  roleDefinitionName: string;
  scope: string;
  createdOn: number;
  createdBy: string | null;
}

const fromRow = (r: StoredRoleAssignment): RoleAssignment => ({
  id: r.id,
  tenantId: r.tenantId,
  principalId: r.principalId,
  roleDefinitionId: r.roleId,
  roleDefinitionName: roleById(r.roleId)?.roleName ?? 'unknown',
  scope: r.scope,
  createdOn: r.createdAt,
  createdBy: r.createdBy,
});

/** Placing an app on a host (the one action a resource-group-bound provisioning key may take outside its group). */
const HOST_ASSIGN_ACTION = 'Microsoft.Latchkey/hosts/assign/action';

/** Normalises an ARM scope: leading slash, no trailing slash, "/" for the tenant root. */
export function normalizeScope(scope: string): string {
  const s = `/${scope.trim().replace(/^\/+|\/+$/g, '')}`;
  return s;
}

export const SCOPE_RE = /^\/([A-Za-z0-9._()-]+\/[A-Za-z0-9._()~-]+)*(\/[A-Za-z0-9._()-]+)?$/;

/** True when `scope` is `ancestor` or lies below it (ARM ids compare case-insensitively). */
export function scopeCovers(ancestor: string, scope: string): boolean {
  return coversLower(ancestor.toLowerCase(), scope.toLowerCase());
}

/** {@link scopeCovers} of scopes already lower-cased. */
const coversLower = (a: string, s: string): boolean =>
  a === '/' || s === a || (s.length > a.length && s.charCodeAt(a.length) === 47 && s.startsWith(a));

/** Vault-level access model, as the decision point needs it. */
export interface VaultAccessModel {
  /** ARM id of the vault. */
  id: string;
  tenantId: string;
  enableRbacAuthorization: boolean;
  accessPolicies: readonly {
    objectId: string;
    /** A compound identity: the policy applies only to this application acting for `objectId`. */
    applicationId?: string;
    permissions: { secrets?: string[]; keys?: string[]; certificates?: string[] };
  }[];
}

/**
 * Whether an access policy names the caller: its object id and, for a compound
 * policy (objectId + applicationId), also the application the token was issued
 * to (`appid`/`azp`), as Key Vault does: a user's policy "via app X" does not
 * follow the user into another app.
 */
export function policyNames(
  p: { objectId: string; applicationId?: string },
  caller: Pick<Caller, 'oid' | 'appId'>,
): boolean {
  if (p.objectId.toLowerCase() !== caller.oid.toLowerCase()) return false;
  if (!p.applicationId) return true;
  return caller.appId !== null && p.applicationId.toLowerCase() === caller.appId.toLowerCase();
}

/**
 * The one authorization decision point. Control-plane actions and vault data
 * actions are decided by role assignments at ARM scopes; vaults with
 * `enableRbacAuthorization: false` decide data actions by access policies.
 * A denial names the missing action.
 */
export function createAccess(deps: {
  db: Database;
  clock: Clock;
  bus: ChangeBus;
  cacheTtlMs?: number;
  stats?: CacheStats;
}) {
  const { db, clock, bus } = deps;
  // At most one second: a removed assignment stops granting on every node within a second,
  // even one that missed the change notification.
  const ttl = Math.min(deps.cacheTtlMs ?? 1_000, 1_000);
  const stats = deps.stats ?? cacheStats();
  /** A role at a scope, the scope also lower-cased (compared on every decision). */
  type Grant = { role: RoleDefinition; scope: string; scopeLower: string };
  const cache = new Map<string, { at: number; rows: Grant[] }>();
  /**
   * Bumped by every drop: a read that was under way meanwhile (its answer may predate the change)
   * answers its own request but is not cached, as lib/change-cache.ts's `mark`/`put` do.
   */
  let epoch = 0;
  const drop = (principalId: string) => {
    epoch++;
    cache.delete(principalId);
  };
  bus.subscribe('roleAssignment', drop);
  bus.subscribe('principal', drop);
  bus.onResync(() => {
    epoch++;
    cache.clear();
  });

  /** The principal's assignments; `cached` says whether they came from memory. */
  const assignmentsOf = async (tenantId: string, principalId: string, fresh = false) => {
    const hit = fresh ? undefined : cache.get(principalId);
    if (hit && clock.monotonic() - hit.at < ttl) {
      stats.hits++;
      return { rows: hit.rows, cached: true };
    }
    stats.misses++;
    // Aged from when the read starts, not when it answers: a change committed meanwhile and not
    // heard (a lost notification) still stops granting within `ttl` of its commit.
    const started = clock.monotonic(); // monotonic: a clock step must not keep stale roles
    const mark = epoch;
    const rows = await assignmentStore.listByPrincipal(db, tenantId, principalId);
    const resolved = rows.flatMap((r): Grant[] => {
      const role = roleById(r.roleId);
      return role ? [{ role, scope: r.scope, scopeLower: r.scope.toLowerCase() }] : [];
    });
    if (cache.size > 50_000) cache.clear();
    // Not a read inside a transaction: it sees that transaction's uncommitted assignments (a
    // manifest's, say), and a rollback publishes nothing that would drop them.
    if (mark === epoch && db.current() === undefined) cache.set(principalId, { at: started, rows: resolved });
    return { rows: resolved, cached: false };
  };

  /** A provisioning key is never more than its scopes (and its resource group, if it has one). */
  const provisioningDecision = (caller: Caller, action: string, scope: string): LatchkeyError | undefined => {
    if (!scopeFor(caller.provisioningScopes ?? [], action, actionMatches)) {
      const needed = scopeNeeded(action, actionMatches);
      return new LatchkeyError(
        'ProvisioningScopeMissing',
        needed
          ? `Provisioning key ${caller.provisioningKeyId} may not perform '${action}': it needs the scope '${needed}'.`
          : `Provisioning key ${caller.provisioningKeyId} may not perform '${action}': no provisioning scope allows it.`,
      );
    }
    const rg = caller.provisioningResourceGroup;
    // One exception to the bound: placing the key's own apps on a shared host (e.g. `latchkey up`'s
    // built-in one) elsewhere. That gives the host tokens for those apps, and the key nothing.
    if (rg && !scopeCovers(rg, scope) && action !== HOST_ASSIGN_ACTION) {
      return new LatchkeyError(
        'ProvisioningScopeMissing',
        `Provisioning key ${caller.provisioningKeyId} is limited to resource group ${rg}; '${scope}' is outside it.`,
      );
    }
    return undefined;
  };

  const denied = (caller: Caller, action: string, scope: string, data = false) => {
    const roles = rolesAllowing(action, data);
    return new LatchkeyError(
      'Forbidden',
      `The caller (object id ${caller.oid}) is not authorized to perform '${action}' over scope '${scope}', or the scope is invalid.${roles.length ? ` Built-in roles that allow it: ${roles.slice(0, 4).join(', ')}.` : ''}`,
    );
  };

  return {
    /** True when the caller's role assignments (or a provisioning key's scopes) grant `action` at `scope`. */
    async allows(caller: Caller, action: string, scope: string, data = false): Promise<boolean> {
      if (caller.provisioningScopes) return provisioningDecision(caller, action, scope) === undefined;
      // scopeCovers on lower-cased scopes, each lowered once (not per assignment and request).
      const s = scope.toLowerCase();
      const grants = (rows: Grant[]) =>
        rows.some((r) => coversLower(r.scopeLower, s) && roleAllows(r.role, action, data));
      const got = await assignmentsOf(caller.tenantId, caller.oid);
      if (grants(got.rows)) return true;
      // A refusal from memory is checked against the database: an assignment just made on
      // another node grants on the next request here, even before its notification arrives.
      return got.cached && grants((await assignmentsOf(caller.tenantId, caller.oid, true)).rows);
    },
    /** Throws 403 (naming the action) unless RBAC grants it. */
    async require(caller: Caller, action: string, scope: string, data = false): Promise<void> {
      if (caller.provisioningScopes) {
        const refusal = provisioningDecision(caller, action, scope);
        if (refusal) throw refusal;
        return;
      }
      if (!(await this.allows(caller, action, scope, data))) throw denied(caller, action, scope, data);
    },
    /**
     * A vault data-plane decision: RBAC data action at the object's scope, or the
     * access policy permission when the vault uses access policies.
     */
    async requireVaultData(
      caller: Caller,
      vault: VaultAccessModel,
      check: {
        dataAction: string;
        objectScope?: string;
        policy: { kind: 'secrets' | 'keys' | 'certificates'; permission: string };
      },
    ): Promise<void> {
      if (vault.tenantId !== caller.tenantId) throw new LatchkeyError('VaultNotFound', 'Vault not found.');
      if (vault.enableRbacAuthorization) {
        const scope = check.objectScope ?? vault.id;
        if (!(await this.allows(caller, check.dataAction, scope, true)))
          throw denied(caller, check.dataAction, scope, true);
        return;
      }
      const perm = check.policy.permission.toLowerCase();
      const ok = vault.accessPolicies.some(
        (p) =>
          policyNames(p, caller) &&
          (p.permissions[check.policy.kind] ?? []).some(
            (x) => x.toLowerCase() === perm || x.toLowerCase() === 'all',
          ),
      );
      if (!ok) {
        throw new LatchkeyError(
          'Forbidden',
          `The user, group or application '${caller.appId ? `appid=${caller.appId};` : ''}oid=${caller.oid}' does not have ${check.policy.kind} ${perm} permission on key vault '${vault.id.split('/').pop()}'. Add it with an access policy.`,
        );
      }
    },

    // ---- role assignments ----
    async list(
      tenantId: string,
      filter: { principalId?: string; scope?: string; atOrAbove?: boolean } = {},
    ): Promise<RoleAssignment[]> {
      const rows = await assignmentStore.listByTenant(db, tenantId, filter.principalId || undefined);
      const scope = filter.scope ? normalizeScope(filter.scope) : undefined;
      return rows
        .map(fromRow)
        .filter(
          (a) =>
            !scope ||
            scopeCovers(scope, a.scope) ||
            (filter.atOrAbove !== false && scopeCovers(a.scope, scope)),
        );
    },
    async get(tenantId: string, id: string): Promise<RoleAssignment | undefined> {
      if (!isGuid(id)) return undefined;
      const r = await assignmentStore.find(db, tenantId, id.toLowerCase());
      return r && fromRow(r);
    },
    async create(
      tenantId: string,
      input: {
        principalId: string;
        role: RoleDefinition;
        scope: string;
        createdBy?: string | null;
        id?: string;
      },
      q: Queryable = db,
    ): Promise<RoleAssignment> {
      const scope = normalizeScope(input.scope);
      if (scope.length > 1000 || !SCOPE_RE.test(scope))
        throw new LatchkeyError('BadParameter', 'The scope is not a valid ARM resource id.');
      const existing = await assignmentStore.findSame(q, input.principalId, input.role.id, scope);
      if (existing) throw new LatchkeyError('Conflict', 'The role assignment already exists.');
      const row: StoredRoleAssignment = {
        id: input.id ?? newGuid(),
        tenantId,
        principalId: input.principalId,
        roleId: input.role.id,
        scope,
        createdAt: clock.now(),
        createdBy: input.createdBy ?? null,
      };
      await assignmentStore.insert(q, row);
      bus.publish('roleAssignment', input.principalId);
      return fromRow(row);
    },
    async delete(tenantId: string, id: string, q: Queryable = db): Promise<RoleAssignment> {
      const a = await this.get(tenantId, id);
      if (!a) throw new LatchkeyError('NotFound', 'Role assignment not found.');
      await assignmentStore.delete(q, tenantId, a.id);
      bus.publish('roleAssignment', a.principalId);
      return a;
    },
    /** Removes every assignment at or below a scope (a deleted resource takes its assignments with it). */
    async deleteAtOrBelow(tenantId: string, scope: string, q: Queryable = db): Promise<number> {
      const rows = await assignmentStore.listAll(q, tenantId);
      let n = 0;
      for (const r of rows) {
        if (scopeCovers(scope, r.scope)) {
          await assignmentStore.delete(q, tenantId, r.id);
          bus.publish('roleAssignment', r.principalId);
          n++;
        }
      }
      return n;
    },
  };
}
export type Access = ReturnType<typeof createAccess>;
