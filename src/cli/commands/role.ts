import { randomUUID } from 'node:crypto';
import { Command } from 'commander';
import { type Ctx, withCtx } from '../context.js';
import { CliError } from '../errors.js';
import { refuseDotSegment, seg } from '../path.js';
import { api } from '../session.js';
import { AUTHZ_API, isGuid, resolvePrincipal, shortId, show, subscriptionOf } from './arm.js';

interface AssignmentJson {
  id: string;
  name: string;
  type: string;
  properties: {
    roleDefinitionId: string;
    principalId: string;
    principalType: string;
    scope: string;
    createdOn?: string;
    updatedOn?: string;
    createdBy?: string | null;
    updatedBy?: string | null;
    condition?: string | null;
    conditionVersion?: string | null;
    description?: string | null;
    delegatedManagedIdentityResourceId?: string | null;
  };
}
interface DefinitionJson {
  id: string;
  name: string;
  type: string;
  properties: {
    roleName: string;
    type: string;
    description: string;
    assignableScopes: string[];
    permissions: unknown[];
  };
}

const authz = (scope: string, rest: string) =>
  `${scope === '/' ? '' : scope.replace(/\/+$/, '')}/providers/Microsoft.Authorization/${rest}`;
const q = (filter?: string) => `?${AUTHZ_API}${filter ? `&$filter=${encodeURIComponent(filter)}` : ''}`;

/** az flattens `properties` and names the principal and role. */
const assignmentView = (
  a: AssignmentJson,
  names: { principal?: string | null; role?: string | null } = {},
) => ({
  condition: a.properties.condition ?? null,
  conditionVersion: a.properties.conditionVersion ?? null,
  createdBy: a.properties.createdBy ?? null,
  createdOn: a.properties.createdOn ?? null,
  delegatedManagedIdentityResourceId: a.properties.delegatedManagedIdentityResourceId ?? null,
  description: a.properties.description ?? null,
  id: a.id,
  name: a.name,
  principalId: a.properties.principalId,
  ...(names.principal !== undefined ? { principalName: names.principal } : {}),
  principalType: a.properties.principalType,
  roleDefinitionId: a.properties.roleDefinitionId,
  ...(names.role !== undefined ? { roleDefinitionName: names.role } : {}),
  scope: a.properties.scope,
  type: a.type,
  updatedBy: a.properties.updatedBy ?? null,
  updatedOn: a.properties.updatedOn ?? null,
});

const definitionView = (d: DefinitionJson) => ({
  assignableScopes: d.properties.assignableScopes,
  description: d.properties.description,
  id: d.id,
  name: d.name,
  permissions: d.properties.permissions,
  roleName: d.properties.roleName,
  roleType: d.properties.type,
  type: d.type,
});

/** az's table view of role assignments and definitions. */
const assignmentRow = (a: ReturnType<typeof assignmentView>) => ({
  Principal: 'principalName' in a ? (a.principalName ?? a.principalId) : a.principalId,
  Role: 'roleDefinitionName' in a ? a.roleDefinitionName : a.roleDefinitionId.split('/').pop(),
  Scope: shortId(a.scope),
});
const definitionRow = (d: ReturnType<typeof definitionView>) => ({
  Name: d.roleName,
  Type: d.roleType,
  Description: d.description,
});

const roleGuid = (id: string) => id.split('/').pop()!.toLowerCase();

async function definitions(c: Ctx, scope = '/', name?: string): Promise<DefinitionJson[]> {
  const filter = name && !isGuid(name) ? `roleName eq '${name.replaceAll("'", "''")}'` : undefined;
  const r = await api<{ value: DefinitionJson[] }>(
    c,
    'GET',
    `${authz(scope, 'roleDefinitions')}${q(filter)}`,
  );
  return name && isGuid(name) ? r.value.filter((d) => d.name.toLowerCase() === name.toLowerCase()) : r.value;
}

/** `--role` as a name, a GUID or a role definition id → the role definition. */
async function findRole(c: Ctx, role: string): Promise<DefinitionJson> {
  const key = role.includes('/') ? roleGuid(role) : role;
  const hit = (await definitions(c, '/', key))[0];
  if (!hit) throw new CliError(`role '${role}' doesn't exist (see: latchkey role definition list)`);
  return hit;
}

/**
 * A scope as given (`--scope`, `--scopes`), as a path. No segment may be `.` or `..`: the URL
 * parser resolves those to the parent, so `--scope /subscriptions/S/resourceGroups/rg/..` would
 * have assigned the role at the whole subscription (src/cli/path.ts).
 */
export function scopeFromText(scope: string): string {
  if (scope === '/') return '/';
  const trimmed = scope.replace(/^\/+|\/+$/g, '');
  for (const s of trimmed.split('/')) refuseDotSegment(s);
  return `/${trimmed}`;
}

/** The scope of `-g` (a resource group of the subscription), or of the subscription: one segment each. */
export const groupScope = (sub: string, resourceGroup: string | undefined): string =>
  resourceGroup === undefined
    ? `/subscriptions/${seg(sub)}`
    : `/subscriptions/${seg(sub)}/resourceGroups/${seg(resourceGroup)}`;

/** `--scope`, or `-g` (a resource group of the subscription). */
async function scopeOf(c: Ctx, o: { scope?: string; resourceGroup?: string; subscription?: string }) {
  if (o.scope && o.resourceGroup) throw new CliError('give --scope or --resource-group, not both', 2);
  if (o.scope) return scopeFromText(o.scope);
  return groupScope(await subscriptionOf(c, o.subscription), o.resourceGroup || undefined);
}

async function principalIdOf(c: Ctx, o: { assignee?: string; assigneeObjectId?: string }) {
  if (o.assigneeObjectId) {
    if (!isGuid(o.assigneeObjectId)) throw new CliError('--assignee-object-id must be a GUID', 2);
    return o.assigneeObjectId.toLowerCase();
  }
  if (!o.assignee) return undefined;
  return (await resolvePrincipal(c, o.assignee)).id;
}

/** Names for a list: role names from the definitions, principal names from the directory (best effort). */
async function named(c: Ctx, list: AssignmentJson[]) {
  const roles = new Map((await definitions(c)).map((d) => [d.name.toLowerCase(), d.properties.roleName]));
  const principals = new Map<string, string | null>();
  for (const a of list) {
    const id = a.properties.principalId;
    if (principals.has(id)) continue;
    const p = await resolvePrincipal(c, id).catch(() => undefined);
    principals.set(id, p ? (p.userName ?? p.appId ?? p.displayName) : null);
  }
  return list.map((a) =>
    assignmentView(a, {
      principal: principals.get(a.properties.principalId) ?? null,
      role: roles.get(roleGuid(a.properties.roleDefinitionId)) ?? null,
    }),
  );
}

/** Assigns `role` (name or id) to a principal at `scope` (for `ad sp create-for-rbac`). */
export async function assignRole(c: Ctx, principalId: string, role: string, scope: string): Promise<void> {
  const def = await findRole(c, role);
  const s = scopeFromText(scope);
  await api(c, 'PUT', `${authz(s, `roleAssignments/${randomUUID()}`)}${q()}`, {
    properties: { roleDefinitionId: def.id, principalId },
  });
}

/** `latchkey role assignment|definition ...` (az role). */
export function roleCommand(): Command {
  const role = new Command('role').description('Role-based access control: assignments and definitions');
  const assignment = role.command('assignment').description('Role assignments');

  assignment
    .command('create')
    .description('Assign a role to a user, service principal or managed identity at a scope')
    .option('--assignee <who>', 'object id, app id or user name')
    .option('--assignee-object-id <id>', 'object id (no directory lookup)')
    .requiredOption('--role <role>', 'role name or id, e.g. "Key Vault Secrets User"')
    // duplicate-ok: create, list and delete take az's flags (--assignee, --role, --scope, -g,
    // --subscription) with help texts of their own, in az's order; their actions share principalIdOf,
    // findRole and scopeOf above. This run of .option lines is alike in shape only with other
    // commands' flag lists (keyvault secret set-attributes).
    .option('--scope <scope>', 'scope: "/", /subscriptions/{s}[/resourceGroups/{g}[/providers/...]]')
    .option('-g, --resource-group <rg>', 'scope: this resource group')
    .option('--subscription <id>', 'subscription id (default: the login’s)')
    .action(
      withCtx(async (o, c) => {
        const principalId = await principalIdOf(c, o);
        if (!principalId) throw new CliError('give --assignee or --assignee-object-id', 2);
        const def = await findRole(c, o.role);
        const scope = await scopeOf(c, o);
        const a = await api<AssignmentJson>(
          c,
          'PUT',
          `${authz(scope, `roleAssignments/${randomUUID()}`)}${q()}`,
          {
            properties: { roleDefinitionId: def.id, principalId },
          },
        );
        show(c, assignmentView(a), assignmentRow);
      }),
    );

  assignment
    .command('list')
    .description('List role assignments (at the subscription and above, unless --scope or --all)')
    .option('--assignee <who>', 'object id, app id or user name')
    .option('--assignee-object-id <id>', 'object id')
    .option('--role <role>', 'only this role')
    .option('--scope <scope>', 'only assignments at this scope')
    .option('-g, --resource-group <rg>', 'only assignments at this resource group')
    .option('--include-inherited', 'also assignments above the scope')
    .option('--all', 'every assignment in the tenant, at any scope')
    .option('--subscription <id>', 'subscription id (default: the login’s)')
    .action(
      withCtx(async (o, c) => {
        const principalId = await principalIdOf(c, o);
        const roleId = o.role ? (await findRole(c, o.role)).name.toLowerCase() : undefined;
        let list: AssignmentJson[];
        if (o.all) {
          const f = principalId ? `principalId eq '${principalId}'` : undefined;
          list = (await api<{ value: AssignmentJson[] }>(c, 'GET', `${authz('/', 'roleAssignments')}${q(f)}`))
            .value;
        } else {
          const scope = await scopeOf(c, o);
          const f = ['atScope()', ...(principalId ? [`assignedTo('${principalId}')`] : [])].join(' and ');
          list = (
            await api<{ value: AssignmentJson[] }>(c, 'GET', `${authz(scope, 'roleAssignments')}${q(f)}`)
          ).value;
          const explicit = o.scope !== undefined || o.resourceGroup !== undefined;
          if (explicit && !o.includeInherited)
            list = list.filter((a) => a.properties.scope.toLowerCase() === scope.toLowerCase());
        }
        if (roleId) list = list.filter((a) => roleGuid(a.properties.roleDefinitionId) === roleId);
        show(c, await named(c, list), assignmentRow);
      }),
    );

  assignment
    .command('delete')
    .description('Delete role assignments by id, or by assignee/role/scope')
    .option('--ids <ids...>', 'full role assignment ids')
    .option('--assignee <who>', 'object id, app id or user name')
    .option('--assignee-object-id <id>', 'object id')
    .option('--role <role>', 'role name or id')
    .option('--scope <scope>', 'scope')
    .option('-g, --resource-group <rg>', 'resource group scope')
    .option('--subscription <id>', 'subscription id (default: the login’s)')
    .action(
      withCtx(async (o, c) => {
        if (o.ids) {
          for (const id of o.ids as string[]) {
            // As for a scope: `…/roleAssignments/..` must not become a DELETE of the parent path.
            for (const s of id.split('/')) refuseDotSegment(s);
            await api(c, 'DELETE', `${id.startsWith('/') ? id : `/${id}`}${q()}`);
          }
          return;
        }
        const principalId = await principalIdOf(c, o);
        if (!principalId && !o.role && !o.scope && !o.resourceGroup)
          throw new CliError('give --ids, or at least one of --assignee, --role, --scope', 2);
        const roleId = o.role ? (await findRole(c, o.role)).name.toLowerCase() : undefined;
        const scope = o.scope || o.resourceGroup ? await scopeOf(c, o) : undefined;
        const f = principalId ? `principalId eq '${principalId}'` : undefined;
        const all = (
          await api<{ value: AssignmentJson[] }>(c, 'GET', `${authz(scope ?? '/', 'roleAssignments')}${q(f)}`)
        ).value;
        const hits = all.filter(
          (a) =>
            (!scope || a.properties.scope.toLowerCase() === scope.toLowerCase()) &&
            (!roleId || roleGuid(a.properties.roleDefinitionId) === roleId),
        );
        if (hits.length === 0) throw new CliError('no matching role assignment');
        for (const a of hits) await api(c, 'DELETE', `${a.id}${q()}`);
      }),
    );

  role
    .command('definition')
    .description('Role definitions')
    .command('list')
    .description('List role definitions (built-in roles)')
    .option('-n, --name <name>', 'role name or id')
    .option('--scope <scope>', 'scope', '/')
    .action(
      withCtx(async (o, c) => {
        show(c, (await definitions(c, o.scope, o.name)).map(definitionView), definitionRow);
      }),
    );
  return role;
}
