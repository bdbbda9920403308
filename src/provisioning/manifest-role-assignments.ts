import { ROLE_ASSIGNMENT_ACTIONS } from '../access/assignments-service.js';
import { findRole } from '../access/roles.js';
import { newGuid } from '../lib/ids.js';
import type { Planner } from './manifest-plan.js';
import { type ManifestRoleAssignment, manifestError } from './manifest-schema.js';

const eq = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/** Role assignments: created when no assignment of that role to that principal at that scope exists. */
export async function planRoleAssignments(
  p: Planner,
  assignments: readonly ManifestRoleAssignment[],
): Promise<void> {
  const { deps, caller, meta, refs } = p;
  for (const [idx, ra] of assignments.entries()) {
    const path = ['roleAssignments', idx] as const;
    const role = findRole(ra.role);
    if (!role)
      throw manifestError('UnknownRole', [...path, 'role'], `No role named '${ra.role.slice(0, 128)}'`);
    // Allowed to read assignments at the scope first (as named, before any lookup): what exists
    // (principals, vaults, resource groups) is told only to a caller who may read there.
    const nominal = refs.nominalScope(ra.scope);
    await p.need(ROLE_ASSIGNMENT_ACTIONS.read, nominal);
    await refs.checkPrincipal(ra.principal, [...path, 'principal'], {
      action: ROLE_ASSIGNMENT_ACTIONS.write,
      scope: nominal,
    });
    const scope = await refs.scope(ra.scope, [...path, 'scope']);
    const label = `${role.roleName} → ${JSON.stringify(ra.principal)} @ ${typeof ra.scope === 'string' ? ra.scope : JSON.stringify(ra.scope)}`;
    const pid = await refs.principalId(ra.principal, [...path, 'principal'], false);
    const found = pid
      ? (await deps.access.list(caller.tenantId, { principalId: pid })).find(
          (x) => x.roleDefinitionId === role.id && eq(x.scope, scope),
        )
      : undefined;
    if (ra.state === 'absent') {
      if (!found) continue;
      const run = async () => void (await deps.roleAssignments.delete(caller, meta, scope, found.id));
      await p.remove({ kind: 'roleAssignment', name: label, run }, ROLE_ASSIGNMENT_ACTIONS.delete, scope);
    } else if (found) p.add({ action: 'unchanged', kind: 'roleAssignment', name: label });
    else {
      await p.need(ROLE_ASSIGNMENT_ACTIONS.write, scope);
      p.add({
        action: 'create',
        kind: 'roleAssignment',
        name: label,
        run: async () =>
          void (await deps.roleAssignments.create(caller, meta, scope, newGuid(), {
            roleDefinitionId: role.id,
            principalId: (await refs.principalId(ra.principal, [...path, 'principal']))!,
          })),
      });
    }
  }
}
