/**
 * Roles: the built-in definitions (data, in built-in-roles.ts), the directory's actions, and how a
 * role's actions and data actions match an operation (Azure's wildcard rules).
 */
import { BUILT_IN_ROLES, type RoleDefinition } from './built-in-roles.js';

export { BUILT_IN_ROLES, type RoleDefinition };

/** Directory actions, checked at the tenant root scope "/". */
export const DIRECTORY_ACTIONS = {
  read: 'Microsoft.Directory/servicePrincipals/read',
  write: 'Microsoft.Directory/servicePrincipals/write',
  delete: 'Microsoft.Directory/servicePrincipals/delete',
  credentials: 'Microsoft.Directory/servicePrincipals/credentials/write',
  usersRead: 'Microsoft.Directory/users/read',
  users: 'Microsoft.Directory/users/write',
  usersDelete: 'Microsoft.Directory/users/delete',
  rotateSigningKey: 'Microsoft.Directory/signingKeys/rotate/action',
  /** Latchkey-specific: read or change the tenant's settings (its federation issuers); the tenant admin's. */
  tenantSettings: 'Microsoft.Latchkey/tenantSettings/write',
  /** The tenant's own CA (issuer `Latchkey`): a tenant Owner's, not a Contributor's. */
  rotateCertificateAuthority: 'Microsoft.Latchkey/certificateAuthority/rotate/action',
} as const;

const byId = new Map(BUILT_IN_ROLES.map((r) => [r.id, r]));
const byName = new Map(BUILT_IN_ROLES.map((r) => [r.roleName.toLowerCase(), r]));

/** Finds a role by name (case-insensitive), GUID, or full role-definition id. */
export function findRole(nameOrId: string): RoleDefinition | undefined {
  const s = nameOrId.trim();
  const tail = s.split('/').pop()!.toLowerCase();
  return byId.get(tail) ?? byName.get(s.toLowerCase());
}

export const roleById = (id: string): RoleDefinition | undefined => byId.get(id);

// Azure wildcard matching, case-insensitively: `*` matches any run of characters, and a `*` that
// is a whole segment (between two slashes) also matches no segment, as Azure's built-in roles rely
// on: Managed Identity Operator's `userAssignedIdentities/*/read` grants `userAssignedIdentities/read`.
const compiled = new Map<string, RegExp>();
export function actionMatches(pattern: string, action: string): boolean {
  if (pattern === '*') return true;
  let re = compiled.get(pattern);
  if (!re) {
    const wildcards = (p: string) =>
      p
        .split('*')
        .map((q) => q.replace(/[.+?^${}()|[\]\\/]/g, '\\$&'))
        .join('.*');
    re = new RegExp(`^${pattern.split('/*/').map(wildcards).join('\\/(?:.*\\/)?')}$`, 'i');
    compiled.set(pattern, re);
  }
  return re.test(action);
}

/** True when the role grants `action` (control plane) or `dataAction` (data plane). */
export function roleAllows(role: RoleDefinition, action: string, data: boolean): boolean {
  const allow = data ? role.dataActions : role.actions;
  const deny = data ? role.notDataActions : role.notActions;
  return allow.some((p) => actionMatches(p, action)) && !deny.some((p) => actionMatches(p, action));
}

/**
 * The built-in roles that grant `action`, the most specific grant first (a role that names the
 * action before one that grants a wildcard over it), for refusals that tell the fix.
 */
export function rolesAllowing(action: string, data: boolean): string[] {
  const specificity = (r: RoleDefinition) =>
    Math.max(
      ...(data ? r.dataActions : r.actions).filter((p) => actionMatches(p, action)).map((p) => p.length),
    );
  const exceptions = (r: RoleDefinition) => (data ? r.notDataActions : r.notActions).length;
  return BUILT_IN_ROLES.filter((r) => roleAllows(r, action, data))
    .sort((a, b) => specificity(b) - specificity(a) || exceptions(b) - exceptions(a))
    .map((r) => r.roleName);
}
