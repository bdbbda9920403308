import { roleById } from '../../access/roles.js';
import { LatchkeyError } from '../../errors/index.js';
import { isGuid, newGuid } from '../../lib/ids.js';
import { KEY_PERMISSIONS, SECRET_PERMISSIONS } from '../../vault/model.js';
import {
  actionButton,
  checked,
  dataTable,
  input,
  mono,
  postForm,
  required,
  section,
  text,
} from '../components.js';
import { type ConsoleContext, done, type PageResult, query } from '../context.js';
import { html, type SafeHtml } from '../html.js';
import type { ConsoleRouter } from '../routes.js';
import { addRoleAssignmentForm, memberPicker } from './member-picker.js';
import { principalNames, roleAssignmentsTable } from './shared.js';
import { controlVault, GRANT_BACK, vaultBase, vaultHeader } from './vault-common.js';

/**
 * The object id behind what a user typed (user name, object id or app id):
 * resolved through the directory when the user may read it; a GUID is taken
 * as an object id otherwise (the service then checks it exists).
 */
async function principalId(ctx: ConsoleContext, assignee: string): Promise<string> {
  try {
    return (await ctx.s.roleAssignments.resolvePrincipal(ctx.caller, assignee)).id;
  } catch (e) {
    if (e instanceof LatchkeyError && e.status === 403 && isGuid(assignee)) return assignee.toLowerCase();
    throw e;
  }
}

/** A principal's name for a message (its object id when it has none to show). */
const nameOf = async (ctx: ConsoleContext, id: string): Promise<string> =>
  (await principalNames(ctx, [id])).get(id) ?? id;

const permissionChecks = (
  kind: 'secrets' | 'keys',
  list: readonly string[],
  selected: readonly string[],
): SafeHtml => {
  const on = new Set(selected.map((p) => p.toLowerCase()));
  return html`<fieldset><legend>${kind === 'secrets' ? 'Secret permissions' : 'Key permissions'}</legend><div class="grid-checks">${list.map(
    (p) =>
      html`<div class="check"><input type="checkbox" id="perm-${kind}-${p}" name="${kind}" value="${p}"${on.has(p.toLowerCase()) || on.has('all') ? html` checked` : ''}><label for="perm-${kind}-${p}">${p}</label></div>`,
  )}</div></fieldset>`;
};

async function policiesPage(ctx: ConsoleContext): Promise<PageResult> {
  const v = await controlVault(ctx);
  const b = vaultBase(v);
  const names = await principalNames(
    ctx,
    v.accessPolicies.map((p) => p.objectId),
  );
  // The form edits plain policies; a compound one (user + application) is shown and removed only.
  const editing = v.accessPolicies.find(
    (p) => p.objectId === (query(ctx).edit ?? '').toLowerCase() && !p.applicationId,
  );
  return {
    title: `${v.name} · Access policies`,
    nav: 'vaults',
    body: html`${vaultHeader(v, 'policies')}
${
  v.enableRbacAuthorization
    ? html`<div class="alert alert-warning"><strong>This vault uses Azure role-based access control.</strong><p>Access policies are kept but not used for data access; grant roles in <a href="${b}/iam">Access control (IAM)</a>, or switch the permission model on the vault's Overview.</p></div>`
    : ''
}
${dataTable({
  caption: 'Access policies',
  id: 'policies',
  rows: v.accessPolicies,
  empty: 'No access policies.',
  columns: [
    {
      label: 'Principal',
      cell: (p) =>
        html`${names.get(p.objectId) ?? 'Unknown principal'}<br>${mono(p.objectId)}${
          p.applicationId
            ? html`<br><span class="muted">only through application</span> ${mono(p.applicationId)}`
            : ''
        }`,
    },
    { label: 'Secrets', cell: (p) => (p.permissions.secrets ?? []).join(', ') || '—' },
    { label: 'Keys', cell: (p) => (p.permissions.keys ?? []).join(', ') || '—' },
    {
      label: 'Actions',
      cell: (p) =>
        html`<div class="actions">${p.applicationId ? '' : html`<a class="btn btn-small" href="${b}/access-policies?edit=${p.objectId}#policy-form">Edit</a>`}
${actionButton(ctx, `${b}/access-policies/remove`, 'Remove', { hidden: { objectId: p.objectId, applicationId: p.applicationId ?? '' }, danger: true, confirm: 'Remove this access policy?' })}</div>`,
    },
  ],
})}
<h2 id="policy-form">${editing ? 'Edit access policy' : 'Add access policy'}</h2>
${postForm(
  ctx,
  `${b}/access-policies`,
  html`${input({
    id: 'policy-principal',
    name: 'principal',
    label: 'Principal',
    required: true,
    maxLength: 255,
    value: editing?.objectId ?? '',
    hint: 'A user name, or the object ID or client ID of an application or managed identity.',
    mono: true,
  })}
${permissionChecks('secrets', SECRET_PERMISSIONS, editing?.permissions.secrets ?? [])}
${permissionChecks('keys', KEY_PERMISSIONS, editing?.permissions.keys ?? [])}
<button type="submit" class="btn-primary">Save access policy</button>`,
)}`,
  };
}

const ROLE_SCOPE_LABEL = (scope: string, vaultId: string) =>
  scope.toLowerCase() === vaultId.toLowerCase()
    ? 'This vault'
    : scope === '/'
      ? 'Tenant root (inherited)'
      : vaultId.toLowerCase().startsWith(`${scope.toLowerCase()}/`)
        ? `${scope.split('/').length <= 3 ? 'Subscription' : 'Resource group'} (inherited)`
        : 'Below this vault';

async function iamPage(ctx: ConsoleContext): Promise<PageResult> {
  const v = await controlVault(ctx);
  const b = vaultBase(v);
  const picker = await memberPicker(ctx, `${b}/iam`);
  const assignments = await section(async () =>
    roleAssignmentsTable(ctx, {
      list: await ctx.s.roleAssignments.list(ctx.caller, v.armId),
      scope: v.armId,
      removeAction: `${b}/iam/remove`,
      caption: 'Role assignments that apply to this vault',
      empty: 'No role assignments apply to this vault.',
      scopeLabel: (at) => ROLE_SCOPE_LABEL(at, v.armId),
    }),
  );
  return {
    title: `${v.name} · Access control (IAM)`,
    nav: 'vaults',
    body: html`${vaultHeader(v, 'iam')}
${
  v.enableRbacAuthorization
    ? ''
    : html`<div class="alert alert-warning"><strong>This vault uses access policies for data access.</strong><p>Roles here govern managing the vault; data roles such as Key Vault Secrets User take effect only with the RBAC permission model.</p></div>`
}
<h2>Add role assignment</h2>
${addRoleAssignmentForm(ctx, `${b}/iam`, picker, 'Key Vault Secrets User')}
<h2>Role assignments</h2>
${assignments}`,
  };
}

export function registerAccessPages(r: ConsoleRouter): void {
  const base = '/vaults/:rg/:name';
  r.page(`${base}/access-policies`, policiesPage);
  r.action(
    `${base}/access-policies`,
    async (ctx, form) => {
      const v = await controlVault(ctx);
      const objectId = await principalId(ctx, required(form, 'principal', 'The principal', 255));
      const secrets = checked(form, 'secrets');
      const keys = checked(form, 'keys');
      const ref = { subscriptionId: v.subscriptionId, resourceGroup: v.resourceGroup, name: v.name };
      const policy = { tenantId: v.tenantId, objectId, permissions: { secrets, keys } };
      const exists = v.accessPolicies.some((p) => p.objectId === objectId && !p.applicationId);
      if (secrets.length === 0 && keys.length === 0)
        throw new LatchkeyError('BadParameter', 'Choose at least one permission (or remove the policy).');
      await ctx.s.vaults.updateAccessPolicies(ctx.caller, ctx.meta, ref, exists ? 'replace' : 'add', [
        policy,
      ]);
      return done(
        `${vaultBase(v)}/access-policies`,
        `Access policy for ${await nameOf(ctx, objectId)} saved on ${v.name}.`,
      );
    },
    policiesPage,
  );
  r.action(
    `${base}/access-policies/remove`,
    async (ctx, form) => {
      const v = await controlVault(ctx);
      const objectId = text(form, 'objectId', 64).toLowerCase();
      const applicationId = text(form, 'applicationId', 64).toLowerCase();
      const p = v.accessPolicies.find(
        (x) => x.objectId === objectId && (x.applicationId ?? '') === applicationId,
      );
      if (!p) throw new LatchkeyError('NotFound', 'That access policy does not exist.');
      await ctx.s.vaults.updateAccessPolicies(
        ctx.caller,
        ctx.meta,
        { subscriptionId: v.subscriptionId, resourceGroup: v.resourceGroup, name: v.name },
        'remove',
        [p],
      );
      return done(
        `${vaultBase(v)}/access-policies`,
        `Access policy for ${await nameOf(ctx, p.objectId)} removed from ${v.name}.`,
      );
    },
    policiesPage,
  );
  r.page(`${base}/iam`, iamPage);
  r.action(
    `${base}/iam`,
    async (ctx, form) => {
      const v = await controlVault(ctx);
      const role = roleById(text(form, 'role', 64));
      if (!role) throw new LatchkeyError('BadParameter', 'Choose a role.');
      const pid = await principalId(ctx, required(form, 'assignee', 'The assignee', 255));
      const { assignment } = await ctx.s.roleAssignments.create(ctx.caller, ctx.meta, v.armId, newGuid(), {
        roleDefinitionId: role.id,
        principalId: pid,
      });
      // "Grant yourself …" on a refused secrets or keys tab, or a secret's or key's page, returns there.
      const back = text(form, 'back', 140);
      return done(
        `${vaultBase(v)}/${GRANT_BACK.test(back) ? back : 'iam'}`,
        `${role.roleName} granted to ${await nameOf(ctx, assignment.properties.principalId)} on ${v.name}.`,
      );
    },
    iamPage,
  );
  r.action(
    `${base}/iam/remove`,
    async (ctx, form) => {
      const v = await controlVault(ctx);
      const id = required(form, 'id', 'The role assignment', 64);
      const removed = await ctx.s.roleAssignments.delete(ctx.caller, ctx.meta, v.armId, id);
      if (!removed) throw new LatchkeyError('NotFound', 'That role assignment does not exist at this vault.');
      return done(`${vaultBase(v)}/iam`, `Role assignment ${id} removed from ${v.name}.`);
    },
    iamPage,
  );
}
