import type { AuditInput, AuditLog } from '../audit/log.js';
import type { Principal, Principals } from '../authority/principals.js';
import { LatchkeyError } from '../errors/index.js';
import type { ChangeBus } from '../lib/events.js';
import { GUID_RE, isGuid } from '../lib/ids.js';
import { assignmentStore } from '../storage/access/assignment-store.js';
import type { Database } from '../storage/port.js';
import type { ScopeResolver } from './arm-scope.js';
import {
  type RoleAssignmentView,
  type RoleDefinitionView,
  roleAssignmentView,
  roleDefinitionView,
} from './arm-views.js';
import { type Caller, callerEvent, type RequestMeta } from './caller.js';
import { type Access, type RoleAssignment, scopeCovers } from './decision.js';
import { BUILT_IN_ROLES, DIRECTORY_ACTIONS, findRole, type RoleDefinition } from './roles.js';

/** Control-plane actions guarding role assignments, checked at the assignment's scope. */
export const ROLE_ASSIGNMENT_ACTIONS = {
  read: 'Microsoft.Authorization/roleAssignments/read',
  write: 'Microsoft.Authorization/roleAssignments/write',
  delete: 'Microsoft.Authorization/roleAssignments/delete',
} as const;

const ROLE_DEFINITION_ID_RE =
  /^(?:(?:\/subscriptions\/[0-9a-f-]{36})?\/providers\/Microsoft\.Authorization\/roleDefinitions\/)?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/i;

export interface AssignmentFilter {
  /** Only assignments at the scope or above it (`$filter=atScope()`); default: at, above and below. */
  atScope?: boolean;
  /** Only this principal's assignments (`principalId eq '…'` / `assignedTo('…')`). */
  principalId?: string;
}

/** What `--assignee` resolves to. */
export interface PrincipalSummary {
  id: string;
  type: 'User' | 'ServicePrincipal';
  kind: Principal['kind'];
  displayName: string;
  appId: string | null;
  userName: string | null;
}

/**
 * Role assignments and role definitions as the ARM API exposes them, at any
 * scope: the tenant root, a subscription, a resource group, a resource (a
 * vault) or a vault object. Each call resolves the scope in the caller's
 * tenant (404 otherwise), authorizes through the one decision point and audits
 * every change in the transaction that makes it.
 */
/**
 * The subscription a role definition's id is spelled with (`/subscriptions/{id}/providers/…`): the
 * one the scope names, or none at the tenant root. A scope naming a subscription that is not a
 * GUID names none that could exist (404, from its shape alone).
 */
/** The vault a scope as written names (for the audit record of a refusal before any lookup), if any. */
const vaultNamed = (nominal: string): string | null =>
  /\/providers\/Microsoft\.KeyVault\/vaults\/([^/]+)/i.exec(nominal)?.[1]?.toLowerCase() ?? null;

function definitionSubscription(nominal: string): string | null {
  const sub = /^\/subscriptions\/([^/]+)/i.exec(nominal)?.[1];
  if (sub === undefined) return null;
  if (!isGuid(sub))
    throw new LatchkeyError('ResourceNotFound', `The scope '${nominal.slice(0, 300)}' could not be found.`);
  return sub.toLowerCase();
}

export function createRoleAssignments(deps: {
  db: Database;
  access: Access;
  principals: Pick<Principals, 'get' | 'resolve' | 'byUserName'>;
  scopes: ScopeResolver;
  audit: AuditLog;
  bus: ChangeBus;
  /** Hears a batch of refusal records that failed to commit (they are not awaited). */
  onAuditError?: (e: unknown) => void;
}) {
  const { db, access, principals, scopes, audit, bus } = deps;
  const onAuditError = (e: unknown): void => deps.onAuditError?.(e);

  const event = (
    caller: Caller,
    meta: RequestMeta,
    operation: string,
    target: string,
    status: number,
    vault: string | null,
    details?: AuditInput['details'],
  ): AuditInput => callerEvent(caller, meta, { operation, target, status, vault, details });

  /**
   * Denials are audited too (batched, not awaited: inside a manifest's transaction the batch would
   * wait for that very transaction), then rethrown.
   */
  const requireAudited = async (
    caller: Caller,
    meta: RequestMeta,
    action: string,
    scope: string,
    operation: string,
    target: string,
    vault: string | null,
  ) => {
    try {
      await access.require(caller, action, scope);
    } catch (e) {
      if (e instanceof LatchkeyError && e.status === 403)
        audit.note(event(caller, meta, operation, target, 403, vault, { action }), onAuditError);
      throw e;
    }
  };

  const kinds = async (tenantId: string, list: RoleAssignment[]) => {
    const out = new Map<string, Principal['kind'] | undefined>();
    for (const a of list)
      if (!out.has(a.principalId))
        out.set(a.principalId, (await principals.get(tenantId, a.principalId))?.kind);
    return out;
  };

  const view = async (tenantId: string, a: RoleAssignment): Promise<RoleAssignmentView> =>
    roleAssignmentView(a, (await principals.get(tenantId, a.principalId))?.kind);

  /**
   * `action` at the scope as written first (before any lookup: a caller who may not act there
   * hears 403 whether or not it exists, as ARM), then at the scope resolved (404 for none); a
   * refusal is audited with the target `targetAt` names for the scope.
   */
  const authorizedAt = async (
    caller: Caller,
    meta: RequestMeta,
    action: string,
    operation: string,
    rawScope: string,
    targetAt: (scope: string) => string,
  ) => {
    const nominal = scopes.nominal(rawScope);
    await requireAudited(caller, meta, action, nominal, operation, targetAt(nominal), vaultNamed(nominal));
    const resolved = await scopes.resolve(caller.tenantId, rawScope);
    await requireAudited(
      caller,
      meta,
      action,
      resolved.scope,
      operation,
      targetAt(resolved.scope),
      resolved.vault,
    );
    return resolved;
  };

  /** Azure's answer for a principal that is not in the caller's directory. */
  const principalNotFound = (given: string, tenantId: string) =>
    new LatchkeyError(
      'PrincipalNotFound',
      `Principal ${given.slice(0, 64)} does not exist in the directory ${tenantId}.`,
    );

  const requireGuid = (id: string, what: string) => {
    if (!isGuid(id)) throw new LatchkeyError('BadParameter', `The ${what} must be a GUID.`);
    return id.toLowerCase();
  };

  return {
    /** `PUT {scope}/providers/Microsoft.Authorization/roleAssignments/{id}`: 201 when created, 200 when it already was. */
    async create(
      caller: Caller,
      meta: RequestMeta,
      rawScope: string,
      rawId: string,
      input: { roleDefinitionId: string; principalId: string },
    ): Promise<{ created: boolean; assignment: RoleAssignmentView }> {
      const id = requireGuid(rawId, 'role assignment name');
      const { scope, vault } = await authorizedAt(
        caller,
        meta,
        ROLE_ASSIGNMENT_ACTIONS.write,
        'RoleAssignmentCreate',
        rawScope,
        (s) => s,
      );
      const roleMatch = ROLE_DEFINITION_ID_RE.exec(input.roleDefinitionId.trim());
      const role = roleMatch ? findRole(roleMatch[1]!) : undefined;
      if (!role)
        throw new LatchkeyError(
          'BadParameter',
          `The role definition '${input.roleDefinitionId.slice(0, 200)}' does not exist: give a built-in role definition id (see GET /providers/Microsoft.Authorization/roleDefinitions).`,
        );
      const principalId = GUID_RE.test(input.principalId) ? input.principalId.toLowerCase() : '';
      const principal = principalId ? await principals.get(caller.tenantId, principalId) : undefined;
      if (!principal) throw principalNotFound(input.principalId, caller.tenantId);
      const result = await db.transaction(async (tx) => {
        await audit.hold(tx); // lock order: the log's lock first (audit/log.ts)
        // Again under the log's lock, which a principal's delete holds too: one deleted since the
        // check above is PrincipalNotFound, not a foreign-key violation (a 500).
        if (!(await principals.get(caller.tenantId, principal.id, tx)))
          throw principalNotFound(input.principalId, caller.tenantId);
        // A name is unique in its tenant (migration 0023): another tenant's is none of this one's business.
        const same = await assignmentStore.find(tx, caller.tenantId, id);
        if (same) {
          const identical =
            same.principalId === principal.id &&
            same.roleId === role.id &&
            same.scope.toLowerCase() === scope.toLowerCase();
          if (!identical)
            throw new LatchkeyError(
              'Conflict',
              'A role assignment with this name already exists with other properties; role assignments cannot be updated.',
            );
          return { created: false, assignment: (await access.get(caller.tenantId, id))! };
        }
        const a = await access.create(
          caller.tenantId,
          { id, principalId: principal.id, role, scope, createdBy: caller.oid },
          tx,
        );
        await audit.append(
          tx,
          event(caller, meta, 'RoleAssignmentCreate', roleAssignmentView(a, principal.kind).id, 201, vault, {
            principalId: principal.id,
            roleDefinitionId: role.id,
            roleName: role.roleName,
            scope,
          }),
        );
        return { created: true, assignment: a };
      });
      bus.publish('roleAssignment', principal.id);
      return { created: result.created, assignment: roleAssignmentView(result.assignment, principal.kind) };
    },

    /** `GET {scope}/providers/Microsoft.Authorization/roleAssignments/{id}`: the assignment must be at that scope. */
    async get(caller: Caller, rawScope: string, rawId: string): Promise<RoleAssignmentView> {
      await access.require(caller, ROLE_ASSIGNMENT_ACTIONS.read, scopes.nominal(rawScope));
      const { scope } = await scopes.resolve(caller.tenantId, rawScope);
      await access.require(caller, ROLE_ASSIGNMENT_ACTIONS.read, scope);
      const a = isGuid(rawId) ? await access.get(caller.tenantId, rawId) : undefined;
      if (!a || a.scope.toLowerCase() !== scope.toLowerCase())
        throw new LatchkeyError('NotFound', 'The role assignment does not exist at this scope.');
      return view(caller.tenantId, a);
    },

    /** `GET {scope}/providers/Microsoft.Authorization/roleAssignments`: at, above and below the scope (or at/above with atScope). */
    async list(
      caller: Caller,
      rawScope: string,
      filter: AssignmentFilter = {},
    ): Promise<RoleAssignmentView[]> {
      await access.require(caller, ROLE_ASSIGNMENT_ACTIONS.read, scopes.nominal(rawScope));
      const { scope } = await scopes.resolve(caller.tenantId, rawScope);
      await access.require(caller, ROLE_ASSIGNMENT_ACTIONS.read, scope);
      const principalId = filter.principalId?.toLowerCase();
      const all = await access.list(caller.tenantId, principalId ? { principalId } : {});
      const hits = all.filter(
        (a) => scopeCovers(a.scope, scope) || (!filter.atScope && scopeCovers(scope, a.scope)),
      );
      const k = await kinds(caller.tenantId, hits);
      return hits.map((a) => roleAssignmentView(a, k.get(a.principalId)));
    },

    /** `DELETE {scope}/providers/Microsoft.Authorization/roleAssignments/{id}`: the removed assignment, or undefined (204). */
    async delete(
      caller: Caller,
      meta: RequestMeta,
      rawScope: string,
      rawId: string,
    ): Promise<RoleAssignmentView | undefined> {
      const targetAt = (s: string) =>
        `${s === '/' ? '' : s}/providers/Microsoft.Authorization/roleAssignments/${rawId.slice(0, 64)}`;
      const { scope, vault } = await authorizedAt(
        caller,
        meta,
        ROLE_ASSIGNMENT_ACTIONS.delete,
        'RoleAssignmentDelete',
        rawScope,
        targetAt,
      );
      const target = targetAt(scope);
      const found = isGuid(rawId) ? await access.get(caller.tenantId, rawId) : undefined;
      if (!found || found.scope.toLowerCase() !== scope.toLowerCase()) return undefined;
      const removed = await db.transaction(async (tx) => {
        await audit.hold(tx); // lock order: the log's lock first (audit/log.ts)
        const a = await access.delete(caller.tenantId, found.id, tx);
        await audit.append(
          tx,
          event(caller, meta, 'RoleAssignmentDelete', target, 200, vault, {
            principalId: a.principalId,
            roleDefinitionId: a.roleDefinitionId,
            roleName: a.roleDefinitionName,
            scope: a.scope,
          }),
        );
        return a;
      });
      // Again after commit, so no request can have re-cached the old rows in between.
      bus.publish('roleAssignment', removed.principalId);
      return view(caller.tenantId, removed);
    },

    /**
     * Built-in role definitions, visible to every authenticated caller of the tenant at any scope
     * of ARM's shape. The scope is not looked up (a caller who may read nothing there would learn
     * from a 404 whether it exists); a subscription named in it only spells the definitions' ids.
     */
    async listDefinitions(
      _caller: Caller, // any caller of the tenant (authenticated by the route)
      rawScope: string,
      filter: { roleName?: string } = {},
    ): Promise<RoleDefinitionView[]> {
      const subscriptionId = definitionSubscription(scopes.nominal(rawScope));
      const name = filter.roleName?.toLowerCase();
      return BUILT_IN_ROLES.filter((r) => !name || r.roleName.toLowerCase() === name).map((r) =>
        roleDefinitionView(r, subscriptionId),
      );
    },

    async getDefinition(_caller: Caller, rawScope: string, roleId: string): Promise<RoleDefinitionView> {
      const subscriptionId = definitionSubscription(scopes.nominal(rawScope));
      const role: RoleDefinition | undefined = isGuid(roleId) ? findRole(roleId) : undefined;
      if (!role) throw new LatchkeyError('NotFound', 'The role definition does not exist.');
      return roleDefinitionView(role, subscriptionId);
    },

    /**
     * Finds a principal by object id, app id or user name (what `--assignee`
     * accepts). Needs directory read at the tenant root, or the right to assign
     * roles there (a provisioning key with `roleAssignments:write`).
     */
    async resolvePrincipal(caller: Caller, assignee: string): Promise<PrincipalSummary> {
      if (!(await access.allows(caller, ROLE_ASSIGNMENT_ACTIONS.write, '/')))
        await access.require(caller, DIRECTORY_ACTIONS.read, '/');
      const p =
        (isGuid(assignee) ? await principals.resolve(caller.tenantId, assignee) : undefined) ??
        (await principals.byUserName(caller.tenantId, assignee))?.principal;
      if (!p)
        throw new LatchkeyError(
          'PrincipalNotFound',
          `No user, service principal or managed identity '${assignee.slice(0, 100)}' in this directory.`,
        );
      return {
        id: p.id,
        type: p.kind === 'user' ? 'User' : 'ServicePrincipal',
        kind: p.kind,
        displayName: p.displayName,
        appId: p.appId,
        userName: p.userName,
      };
    },
  };
}
export type RoleAssignments = ReturnType<typeof createRoleAssignments>;
