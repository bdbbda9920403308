import { ROLE_ASSIGNMENT_ACTIONS } from '../../access/assignments-service.js';
import { roleById } from '../../access/roles.js';
import { LatchkeyError } from '../../errors/index.js';
import { isGuid, newGuid } from '../../lib/ids.js';
import { dataTable, mono, required, section, seg, text } from '../components.js';
import { type ConsoleContext, done, type PageResult, params, query } from '../context.js';
import { html, type SafeHtml } from '../html.js';
import { breadcrumbs } from '../layout.js';
import type { ConsoleRouter } from '../routes.js';
import { addRoleAssignmentForm, memberPicker } from './member-picker.js';
import { filteredEmpty, listFilter, principalNames, roleAssignmentsTable, subscription } from './shared.js';

const RG_LIST = '/console/resource-groups';

/** The scope of an IAM page: the subscription, or one of its resource groups (it must exist). */
async function scopeOf(ctx: ConsoleContext): Promise<{ id: string; label: string; href: string }> {
  const sub = subscription(ctx);
  const rg = params(ctx).rg;
  if (rg === undefined)
    return { id: `/subscriptions/${sub}`, label: `Subscription ${sub}`, href: '/console/subscription/iam' };
  const { scope } = await ctx.s.scopeResolver.resolve(
    ctx.tenant.id,
    `/subscriptions/${sub}/resourceGroups/${rg}`,
  );
  return { id: scope, label: `Resource group ${rg}`, href: `${RG_LIST}/${seg(rg)}/iam` };
}

/** The role assignments at or above a scope, with remove buttons for those made at it. */
const assignmentsAt = (ctx: ConsoleContext, scope: string, removeAction: string): Promise<SafeHtml> =>
  section(async () =>
    roleAssignmentsTable(ctx, {
      list: await ctx.s.roleAssignments.list(ctx.caller, scope, { atScope: true }),
      scope,
      removeAction,
      caption: 'Role assignments that apply here',
      empty: 'No role assignments apply here.',
      scopeLabel: (at) =>
        at.toLowerCase() === scope.toLowerCase()
          ? 'This scope'
          : at === '/'
            ? 'Tenant root (inherited)'
            : 'Subscription (inherited)',
    }),
  );

async function iamPage(ctx: ConsoleContext): Promise<PageResult> {
  const scope = await scopeOf(ctx);
  const picker = await memberPicker(ctx, scope.href);
  const mayWrite = await ctx.s.access.allows(ctx.caller, ROLE_ASSIGNMENT_ACTIONS.write, scope.id);
  const rg = params(ctx).rg;
  return {
    title: `${scope.label} · Access control (IAM)`,
    nav: 'resourceGroups',
    body: html`${breadcrumbs(
      rg === undefined
        ? [{ label: 'Subscription' }, { label: 'Access control (IAM)' }]
        : [{ label: 'Resource groups', href: RG_LIST }, { label: rg }, { label: 'Access control (IAM)' }],
    )}
<h1>Access control (IAM)</h1>
<p class="lead">${scope.label}: a role assigned here applies to everything in it. <span class="mono">${scope.id}</span></p>
<h2>Add role assignment</h2>
${
  mayWrite
    ? addRoleAssignmentForm(ctx, scope.href, picker, 'Reader')
    : html`<p class="muted" id="iam-note">Adding a role assignment here needs <span class="mono">${ROLE_ASSIGNMENT_ACTIONS.write}</span> (Owner) at this scope or above.</p>`
}
<h2>Role assignments</h2>
${await assignmentsAt(ctx, scope.id, `${scope.href}/remove`)}`,
  };
}

async function groupsPage(ctx: ConsoleContext): Promise<PageResult> {
  const sub = subscription(ctx);
  const filter = listFilter(ctx, { action: RG_LIST, id: 'rg-search', what: 'resource groups' });
  const visible = (await ctx.s.readableScopes.resourceGroups(ctx.caller, sub, 500)).filter((g) =>
    filter.matches(g.name),
  );
  return {
    title: 'Resource groups',
    nav: 'resourceGroups',
    body: html`<h1>Resource groups</h1>
<p class="lead">The resource groups of subscription <span class="mono">${sub}</span> that you may read. <a href="/console/subscription/iam">Access control (IAM) of the subscription</a></p>
${filter.form}
${dataTable({
  caption: 'Resource groups',
  id: 'resource-groups',
  rows: visible,
  empty: filteredEmpty(filter.term, 'resource group', 'No resource group you may read.'),
  columns: [
    { label: 'Name', cell: (g) => g.name },
    { label: 'Location', cell: (g) => g.location },
    { label: 'Resource ID', cell: (g) => mono(g.id) },
    { label: 'Access', cell: (g) => html`<a href="${RG_LIST}/${seg(g.name)}/iam">Access control (IAM)</a>` },
  ],
})}`,
  };
}

/** The scope chooser of "Add role assignment" for one member (from an identity's page). */
export const ADD_ASSIGNMENT = '/console/role-assignments/new';

/** "Add role assignment" for a member: at its resource group, pre-filled, or at another scope. */
export const addAssignmentLinks = (principalId: string, resourceGroup: string, id = 'add-role-assignment') =>
  html`<a class="btn" id="${id}" href="${RG_LIST}/${seg(resourceGroup)}/iam?member=${principalId}">Add role assignment</a> <span class="muted">in resource group ${resourceGroup}, or <a href="${ADD_ASSIGNMENT}?member=${principalId}" id="${id}-elsewhere">at another scope</a> (a vault, the subscription).</span>`;

const MAX_SCOPES = 200;

/**
 * Where the member of `?member=` may be given a role by the signed-in user: the subscription,
 * resource groups and vaults at which they may write role assignments, each a link to that
 * scope's IAM page with the member picked.
 */
async function chooseScopePage(ctx: ConsoleContext): Promise<PageResult> {
  const sub = subscription(ctx);
  const member = (query(ctx).member ?? '').trim().slice(0, 64);
  if (!isGuid(member))
    throw new LatchkeyError('BadParameter', 'Open this page from an identity: no member given.');
  const name = (await principalNames(ctx, [member])).get(member) ?? member;
  const may = (scope: string) => ctx.s.access.allows(ctx.caller, ROLE_ASSIGNMENT_ACTIONS.write, scope);
  const rows: { kind: string; label: string; href: string }[] = [];
  const q = `?member=${encodeURIComponent(member)}`;
  if (await may(`/subscriptions/${sub}`))
    rows.push({ kind: 'Subscription', label: sub, href: `/console/subscription/iam${q}` });
  for (const g of (await ctx.s.scopes.listResourceGroups(ctx.tenant.id, sub)).slice(0, MAX_SCOPES))
    if (await may(g.id))
      rows.push({ kind: 'Resource group', label: g.name, href: `${RG_LIST}/${seg(g.name)}/iam${q}` });
  const vaults = await section(async () => {
    for (const v of (await ctx.s.vaults.list(ctx.caller, sub)).slice(0, MAX_SCOPES))
      if (await may(v.armId))
        rows.push({
          kind: 'Key vault',
          label: `${v.name} (${v.resourceGroup})`,
          href: `/console/vaults/${seg(v.resourceGroup)}/${seg(v.name)}/iam${q}`,
        });
    return html``;
  });
  return {
    title: 'Add role assignment',
    nav: 'resourceGroups',
    body: html`<h1>Add role assignment</h1>
<p class="lead">For <strong id="member-name">${name}</strong> <span class="mono">${member}</span>: choose where the role applies. Only the scopes at which you may assign roles are listed.</p>
${vaults}
${dataTable({
  caption: 'Scopes at which you may assign roles',
  id: 'assignment-scopes',
  rows,
  empty: 'You may assign roles nowhere in this subscription (that needs Owner or User Access Administrator).',
  columns: [
    { label: 'Kind', cell: (r) => r.kind },
    { label: 'Name', cell: (r) => html`<a href="${r.href}">${r.label}</a>` },
  ],
})}`,
  };
}

export function registerIamPages(r: ConsoleRouter): void {
  r.page('/resource-groups', groupsPage);
  r.page('/role-assignments/new', chooseScopePage);
  for (const path of ['/subscription/iam', '/resource-groups/:rg/iam']) {
    r.page(path, iamPage);
    r.action(
      path,
      async (ctx, form) => {
        const scope = await scopeOf(ctx);
        const role = roleById(text(form, 'role', 64));
        if (!role) throw new LatchkeyError('BadParameter', 'Choose a role.');
        const assignee = required(form, 'assignee', 'The member', 255);
        let pid: string;
        try {
          pid = (await ctx.s.roleAssignments.resolvePrincipal(ctx.caller, assignee)).id;
        } catch (e) {
          // Without directory read, an object id is taken as it is (the service checks it exists).
          if (!(e instanceof LatchkeyError && e.status === 403 && isGuid(assignee))) throw e;
          pid = assignee.toLowerCase();
        }
        await ctx.s.roleAssignments.create(ctx.caller, ctx.meta, scope.id, newGuid(), {
          roleDefinitionId: role.id,
          principalId: pid,
        });
        const name = (await principalNames(ctx, [pid])).get(pid) ?? pid;
        return done(scope.href, `${role.roleName} granted to ${name} on ${scope.label}.`);
      },
      iamPage,
    );
    r.action(
      `${path}/remove`,
      async (ctx, form) => {
        const scope = await scopeOf(ctx);
        const id = required(form, 'id', 'The role assignment', 64);
        const removed = await ctx.s.roleAssignments.delete(ctx.caller, ctx.meta, scope.id, id);
        if (!removed)
          throw new LatchkeyError('NotFound', 'That role assignment does not exist at this scope.');
        return done(scope.href, `Role assignment ${id} removed from ${scope.label}.`);
      },
      iamPage,
    );
  }
}
