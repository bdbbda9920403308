import type { PrincipalKind } from '../authority/principals.js';
import type { RoleAssignment } from './decision.js';
import type { RoleDefinition } from './roles.js';

const AUTHZ = 'providers/Microsoft.Authorization';

/** `{scope}/providers/Microsoft.Authorization/{kind}/{name}`; the tenant root has no scope prefix. */
export function authorizationId(scope: string, kind: 'roleAssignments' | 'roleDefinitions', name: string) {
  return `${scope === '/' ? '' : scope}/${AUTHZ}/${kind}/${name}`;
}

/** Azure spells role definition ids under the subscription when there is one, else at the tenant root. */
export function roleDefinitionId(subscriptionId: string | null, roleId: string): string {
  return authorizationId(
    subscriptionId ? `/subscriptions/${subscriptionId}` : '/',
    'roleDefinitions',
    roleId,
  );
}

/** The ARM JSON of a role definition (Microsoft.Authorization/roleDefinitions, api-version 2022-04-01). */
export function roleDefinitionView(role: RoleDefinition, subscriptionId: string | null) {
  return {
    id: roleDefinitionId(subscriptionId, role.id),
    name: role.id,
    type: 'Microsoft.Authorization/roleDefinitions',
    properties: {
      roleName: role.roleName,
      type: 'BuiltInRole',
      description: role.description,
      assignableScopes: ['/'],
      permissions: [
        {
          actions: [...role.actions],
          notActions: [...role.notActions],
          dataActions: [...role.dataActions],
          notDataActions: [...role.notDataActions],
        },
      ],
      createdOn: null,
      updatedOn: null,
      createdBy: null,
      updatedBy: null,
    },
  };
}
export type RoleDefinitionView = ReturnType<typeof roleDefinitionView>;

/** Azure's principalType: managed identities are service principals too. */
export const principalType = (kind: PrincipalKind | undefined): 'User' | 'ServicePrincipal' | 'Unknown' =>
  kind === undefined ? 'Unknown' : kind === 'user' ? 'User' : 'ServicePrincipal';

/** The ARM JSON of a role assignment (Microsoft.Authorization/roleAssignments, api-version 2022-04-01). */
export function roleAssignmentView(a: RoleAssignment, kind: PrincipalKind | undefined) {
  const sub = /^\/subscriptions\/([^/]+)/i.exec(a.scope)?.[1] ?? null;
  const created = new Date(a.createdOn).toISOString();
  return {
    id: authorizationId(a.scope, 'roleAssignments', a.id),
    name: a.id,
    type: 'Microsoft.Authorization/roleAssignments',
    properties: {
      roleDefinitionId: roleDefinitionId(sub, a.roleDefinitionId),
      principalId: a.principalId,
      principalType: principalType(kind),
      scope: a.scope,
      condition: null,
      conditionVersion: null,
      description: null,
      createdOn: created,
      updatedOn: created,
      createdBy: a.createdBy,
      updatedBy: a.createdBy,
      delegatedManagedIdentityResourceId: null,
    },
  };
}
export type RoleAssignmentView = ReturnType<typeof roleAssignmentView>;
